/** The panel's own commands: show the panel (palette, View menu), and open a notebook on its kernel. */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { ITrans } from '../i18n';
import { gpuIcon, OPEN_PANEL } from './ids';

export function addOpenPanelCommand(
  app: JupyterFrontEnd,
  panel: Widget,
  trans: ITrans,
  palette: ICommandPalette | null
): void {
  app.commands.addCommand(OPEN_PANEL, {
    label: trans.__('Open GPU panel'),
    caption: trans.__('Show live GPU metrics in the sidebar'),
    icon: gpuIcon,
    execute: () => app.shell.activateById(panel.id)
  });
  palette?.addItem({ command: OPEN_PANEL, category: 'GPU' });
}

/**
 * Opens a notebook on the kernel it already runs on: JupyterLab then
 * connects to that kernel instead of asking which one to use when it has
 * not yet seen the notebook's session.
 */
export function notebookOpener(
  app: JupyterFrontEnd
): (path: string, kernelId?: string | null) => void {
  return (path, kernelId) => {
    void app.commands.execute('docmanager:open', {
      path,
      ...(kernelId ? { kernel: { id: kernelId } } : {})
    });
  };
}
