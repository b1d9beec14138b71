/**
 * The per-tick cost the UI tests read: a performance mark when a stream
 * tick arrives, a measure (`gpu-panel:tick`) once the panel has drawn it
 * (DOM and charts). A tick the hidden panel skips is not a cost.
 */
const TICK_MARK = 'gpu-panel:tick-start';
export const TICK_MEASURE = 'gpu-panel:tick';
/** Measures kept: a panel left open for a day must not grow the buffer forever. */
const KEEP = 500;

export class TickMeter {
  /** A tick arrived. */
  start(): void {
    try {
      performance.mark(TICK_MARK);
      this._pending = true;
    } catch {
      // no Performance API (tests)
    }
  }

  /** A tick that will not be drawn (panel hidden). */
  skip(): void {
    this._pending = false;
  }

  /** The tick is on screen: record its cost. */
  rendered(): void {
    if (!this._pending) {
      return;
    }
    this._pending = false;
    try {
      performance.measure(TICK_MEASURE, TICK_MARK);
      performance.clearMarks(TICK_MARK);
      if (performance.getEntriesByName(TICK_MEASURE).length > KEEP) {
        performance.clearMeasures(TICK_MEASURE);
      }
    } catch {
      // Performance API missing: nothing to record.
    }
  }

  private _pending = false;
}
