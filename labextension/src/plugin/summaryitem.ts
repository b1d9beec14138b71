/**
 * The summary item (GPU use in a few words; a click opens the panel): in
 * JupyterLab's status bar, or in Notebook 7's top bar, which has no status
 * bar. Shown while the `statusBar` setting is on.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { IToolbarWidgetRegistry } from '@jupyterlab/apputils';
import { IStatusBar } from '@jupyterlab/statusbar';
import { Widget } from '@lumino/widgets';

import { GpuStatusItem } from '../gpus/statusitem';
import { ITrans } from '../i18n';
import { GpuStore } from '../store';
import { OPEN_PANEL, STATUS_ITEM, TOP_BAR_ITEM } from './ids';
import { LiveSettings } from './livesettings';

export interface ISummaryItemOptions {
  store: GpuStore;
  settings: LiveSettings;
  trans: ITrans;
  statusBar: IStatusBar | null;
  toolbarRegistry: IToolbarWidgetRegistry | null;
}

export function addSummaryItem(
  app: JupyterFrontEnd,
  options: ISummaryItemOptions
): void {
  const { settings, statusBar } = options;
  const item = new GpuStatusItem(
    options.store,
    () => settings.current.memoryUnits,
    () => void app.commands.execute(OPEN_PANEL),
    options.trans
  );
  settings.changed.connect(() => item.update());
  if (statusBar) {
    statusBar.registerStatusItem(STATUS_ITEM, {
      item,
      align: 'left',
      rank: 100,
      isActive: () => settings.current.statusBar,
      activeStateChanged: settings.changed
    });
  }
  // Where there is a status bar (JupyterLab) the top-bar slot stays empty.
  options.toolbarRegistry?.addFactory('TopBar', TOP_BAR_ITEM, () => {
    if (statusBar) {
      const empty = new Widget();
      empty.hide();
      return empty;
    }
    item.addClass('jp-GpuPanel-topBarItem');
    const follow = () => item.setHidden(!settings.current.statusBar);
    follow();
    settings.changed.connect(follow);
    return item;
  });
}
