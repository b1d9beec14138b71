/**
 * jupyter-gpu-panel front end: one plugin wires one API client and one
 * store (one stream socket per tab) to the sidebar panel, the summary item
 * (JupyterLab's status bar, or Notebook 7's top bar), commands, launcher
 * tiles, notifications and settings; each part is wired in `plugin/`.
 * Every token is optional, so the plugin activates in JupyterLab and in
 * Jupyter Notebook 7 alike.
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  ICommandPalette,
  IThemeManager,
  IToolbarWidgetRegistry
} from '@jupyterlab/apputils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { ILauncher } from '@jupyterlab/launcher';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';

import { GpuApiClient } from './api';
import { DOMAIN } from './i18n';
import { addOpenPanelCommand, notebookOpener } from './plugin/commands';
import { PLUGIN_ID } from './plugin/ids';
import { addLaunchers } from './plugin/launchers';
import { LiveSettings, storeFollowsSettings } from './plugin/livesettings';
import { addPanel } from './plugin/sidebar';
import { addSummaryItem } from './plugin/summaryitem';
import { kernelToasts } from './plugin/toasts';
import { GpuStore } from './store';

export { gpuIcon } from './plugin/ids';

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'Live NVIDIA GPU metrics in a sidebar panel and the status bar.',
  autoStart: true,
  requires: [],
  optional: [
    ITranslator,
    ICommandPalette,
    ILauncher,
    IStatusBar,
    IToolbarWidgetRegistry,
    ISettingRegistry,
    IThemeManager,
    IDefaultFileBrowser,
    ILayoutRestorer
  ],
  activate: (
    app: JupyterFrontEnd,
    translator: ITranslator | null,
    palette: ICommandPalette | null,
    launcher: ILauncher | null,
    statusBar: IStatusBar | null,
    toolbarRegistry: IToolbarWidgetRegistry | null,
    settingRegistry: ISettingRegistry | null,
    themeManager: IThemeManager | null,
    fileBrowser: IDefaultFileBrowser | null,
    restorer: ILayoutRestorer | null
  ) => {
    const trans = (translator ?? nullTranslator).load(DOMAIN);
    const settings = new LiveSettings(settingRegistry);
    const client = new GpuApiClient(app.serviceManager.serverSettings);
    const openNotebook = notebookOpener(app);
    const store: GpuStore = new GpuStore({
      client,
      ...kernelToasts(app, {
        trans,
        units: () => settings.current.memoryUnits,
        openNotebook,
        release: kernelId => store.releaseCache(kernelId)
      })
    });
    storeFollowsSettings(store, settings);
    addLaunchers(app, {
      client,
      store,
      settings,
      trans,
      launcher,
      palette,
      fileBrowser
    });
    const panel = addPanel(app, {
      client,
      store,
      settings,
      trans,
      openNotebook,
      themeManager,
      restorer
    });
    addOpenPanelCommand(app, panel, trans, palette);
    addSummaryItem(app, { store, settings, trans, statusBar, toolbarRegistry });
    settings.load();
    store.start();
  }
};

export default plugin;
