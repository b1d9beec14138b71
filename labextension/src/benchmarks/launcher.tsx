/**
 * The panel's benchmark launcher: a template drop-down (JupyterLab's
 * HTMLSelect, its text cut with an ellipsis, never under the arrow) and
 * *New benchmark*, which waits while the kernel is checked for torch.
 */
import {
  addIcon,
  HTMLSelect,
  ToolbarButtonComponent
} from '@jupyterlab/ui-components';
import * as React from 'react';

import { ITrans } from '../i18n';
import { IBenchmarkTemplate } from '../types';

export function BenchmarkLauncher(props: {
  templates: IBenchmarkTemplate[];
  onCreate: (template: string) => Promise<void>;
  trans: ITrans;
}): JSX.Element | null {
  const { templates, trans } = props;
  const [template, setTemplate] = React.useState('');
  const [busy, setBusy] = React.useState(false);
  if (templates.length === 0) {
    return null;
  }
  const chosen = templates.some(t => t.name === template)
    ? template
    : templates[0].name;
  const title = templates.find(t => t.name === chosen)?.description ?? '';
  const create = async () => {
    setBusy(true);
    try {
      await props.onCreate(chosen);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="jp-GpuPanel-toolbarRow jp-GpuPanel-launcher">
      <HTMLSelect
        className="jp-GpuPanel-select"
        aria-label={trans.__('Benchmark template')}
        title={title}
        value={chosen}
        onChange={e => setTemplate(e.currentTarget.value)}
        options={templates.map(t => ({ value: t.name, label: t.title }))}
      />
      <ToolbarButtonComponent
        className="jp-GpuPanel-action"
        icon={addIcon}
        label={busy ? trans.__('Checking…') : trans.__('New benchmark')}
        enabled={!busy}
        onClick={() => void create()}
        tooltip={trans.__(
          'Create a benchmark notebook in the current file browser folder'
        )}
      />
    </div>
  );
}
