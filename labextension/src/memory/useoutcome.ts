/**
 * A row's last action and what it came to (outcome.ts), as React state:
 * `run` marks the action pending, awaits it, and keeps its outcome; an
 * informational outcome clears itself after INFO_MS, an error stays until
 * dismissed or the next action.
 */
import * as React from 'react';

import { IDLE, INFO_MS, Outcome, RowAction } from './outcome';

export interface IOutcomeState {
  outcome: Outcome;
  /** Run an action; `act` resolves with its outcome (errors mapped by the caller). */
  run(action: RowAction, act: () => Promise<Outcome>): Promise<void>;
  dismiss(): void;
}

export function useOutcome(): IOutcomeState {
  const [outcome, setOutcome] = React.useState<Outcome>(IDLE);
  const mounted = React.useRef(true);
  React.useEffect(
    () => () => {
      mounted.current = false;
    },
    []
  );
  React.useEffect(() => {
    if (outcome.kind !== 'done' || outcome.level !== 'info') {
      return;
    }
    const t = window.setTimeout(() => setOutcome(IDLE), INFO_MS);
    return () => window.clearTimeout(t);
  }, [outcome]);
  const run = React.useCallback(
    async (action: RowAction, act: () => Promise<Outcome>) => {
      setOutcome({ kind: 'pending', action });
      const next = await act();
      if (mounted.current) {
        setOutcome(next);
      }
    },
    []
  );
  const dismiss = React.useCallback(() => setOutcome(IDLE), []);
  return { outcome, run, dismiss };
}
