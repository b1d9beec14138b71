/**
 * A process outside any kernel running the memory probe (a training
 * script, a torchrun rank): its command, the memory details, and triage,
 * whose outcome shows in the row.
 */
import * as React from 'react';

import { OutcomeNote } from '../components';
import { MemoryUnits } from '../format';
import { ITrans } from '../i18n';
import { IScriptInfo } from '../types';
import { MemoryDetails } from './details';
import { errorOutcome, IDLE, rowView } from './outcome';
import { isAlarm } from './kernelrow';
import {
  scriptCommand,
  scriptDetail,
  scriptTitle,
  SCRIPT_TITLE_MAX
} from './scripts';
import { useOutcome } from './useoutcome';

export function ScriptRow(props: {
  s: IScriptInfo;
  units: MemoryUnits;
  themeKey: string;
  onTriage: (pid: number) => Promise<unknown>;
  trans: ITrans;
}): JSX.Element {
  const { s, units, themeKey, trans } = props;
  const { outcome, run, dismiss } = useOutcome();
  const view = rowView(s.probe, outcome, trans);
  const title = scriptTitle(s, SCRIPT_TITLE_MAX, trans);
  const command = scriptCommand(s);
  const triage = () =>
    run('triage', async () => {
      try {
        await props.onTriage(s.pid);
        return IDLE;
      } catch (err) {
        return errorOutcome('triage', err, trans);
      }
    });
  return (
    <li
      className={`jp-GpuPanel-kernel jp-GpuPanel-script${isAlarm(s) ? ' jp-GpuPanel-kernel-alarm' : ''}`}
      data-script-pid={s.pid}
      aria-label={trans.__('Script %1', title)}
    >
      <div className="jp-GpuPanel-kernelHead">
        <code className="jp-GpuPanel-scriptTitle" title={command || undefined}>
          {title}
        </code>
        <span className="jp-GpuPanel-muted jp-GpuPanel-small">
          {scriptDetail(s, trans)}
        </span>
      </div>
      <MemoryDetails
        subject={s}
        units={units}
        themeKey={themeKey}
        probeText={view.probeText}
        busy={view.busy}
        onTriage={() => void triage()}
        trans={trans}
      />
      {view.note && (
        <OutcomeNote
          level={view.note.level}
          message={view.note.message}
          dismissLabel={trans.__('Dismiss')}
          onDismiss={dismiss}
        />
      )}
    </li>
  );
}
