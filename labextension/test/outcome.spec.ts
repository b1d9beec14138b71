/**
 * What a kernel row says after an action: the server's reason when the
 * probe does not load (torch missing), the queued and already-running
 * answers, failed requests; and that no outcome leaves a row without the
 * action on offer.
 */
import {
  doneOutcome,
  errorOutcome,
  IDLE,
  Outcome,
  probeOutcome,
  rowView
} from '../src/memory/outcome';
import { IProbeLoaded } from '../src/types';
import { probe } from './fixtures';

function reply(partial: Partial<IProbeLoaded>): IProbeLoaded {
  return {
    kernel_id: 'k',
    action: 'probe',
    ok: true,
    queued: false,
    message: '',
    ...partial
  };
}

const NO_TORCH = reply({
  ok: false,
  message:
    'jupyter-gpu-panel: torch is not installed: the GPU memory probe does nothing.\n'
});

describe('Track memory outcomes', () => {
  it("shows the kernel's reason when the probe does not load, and offers it again", () => {
    const o = probeOutcome(NO_TORCH);
    expect(o).toEqual({
      kind: 'done',
      action: 'probe',
      level: 'error',
      message: 'torch is not installed: the GPU memory probe does nothing.'
    });
    const v = rowView(null, o);
    expect(v.note).toEqual({
      level: 'error',
      message: o.kind === 'done' && o.message
    });
    expect(v.offerProbe).toBe(true);
    expect(v.busy).toBe(false);
    expect(v.probeText).toBe('not tracked');
  });

  it('takes "already tracking" as success', () => {
    const o = probeOutcome(
      reply({
        message: 'jupyter-gpu-panel: already tracking GPU memory (cuda:0).'
      })
    );
    expect(o).toMatchObject({
      level: 'info',
      message: 'already tracking GPU memory (cuda:0).'
    });
  });

  it('says a busy kernel queues the probe', () => {
    const o = probeOutcome(reply({ queued: true, message: '' }));
    expect(o).toMatchObject({ level: 'info', queued: true });
    expect(rowView(null, o).probeText).toBe(
      'queued: starts when the running cell ends'
    );
  });

  it('waits while loading, then lets the probe speak for itself once reported', () => {
    const pending: Outcome = { kind: 'pending', action: 'probe' };
    expect(rowView(null, pending)).toMatchObject({
      busy: true,
      pendingAction: 'probe',
      probeText: 'loading…'
    });
    const ok = probeOutcome(
      reply({
        message:
          'jupyter-gpu-panel: tracking GPU memory after every optimizer step (cuda:0).'
      })
    );
    expect(rowView(null, ok).probeText).toBe(
      'loaded, waiting for the server to see it…'
    );
    expect(rowView(null, ok).offerProbe).toBe(true); // never a dead end
    const seen = rowView(probe({ steps: 0, alive: true }), ok);
    expect(seen.note).toBeNull();
    expect(seen.offerProbe).toBe(false);
    expect(seen.probeText).toBe('tracking, 0 steps');
  });

  it('offers the probe again when it stopped (the kernel restarted)', () => {
    const v = rowView(probe({ steps: 1, alive: false }), IDLE);
    expect(v.probeText).toBe('stopped, 1 step');
    expect(v.offerProbe).toBe(true);
  });
});

describe('other actions', () => {
  it('prefixes a failure with what failed, in the server words', () => {
    const o = errorOutcome('restart', new Error('Kernel does not exist: k'));
    expect(o).toMatchObject({
      level: 'error',
      message: 'Restart failed: Kernel does not exist: k'
    });
    expect(errorOutcome('triage', new Error(''))).toMatchObject({
      message: 'Find the leaking line failed: no answer from the server'
    });
    expect(rowView(probe(), o).note?.level).toBe('error');
  });

  it('says what happened after a success', () => {
    expect(doneOutcome('interrupt')).toMatchObject({
      level: 'info',
      message: 'Interrupted.'
    });
    expect(doneOutcome('shutdown')).toMatchObject({ message: 'Shut down.' });
  });

  it('leaves every state with its actions on offer, none but pending busy', () => {
    const outcomes: Outcome[] = [
      IDLE,
      probeOutcome(NO_TORCH),
      probeOutcome(reply({ queued: true })),
      probeOutcome(reply({})),
      errorOutcome('probe', new Error('x')),
      doneOutcome('restart')
    ];
    for (const o of outcomes) {
      const v = rowView(null, o);
      expect(v.busy).toBe(false);
      expect(v.offerProbe).toBe(true);
    }
  });
});
