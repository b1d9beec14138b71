/**
 * jupyter-gpu-panel front end: one plugin wires one API client and one
 * store (one stream socket per tab) to the sidebar panel, the summary item
 * (JupyterLab's status bar, or Notebook 7's top bar), commands, benchmark
 * launchers and settings. Every token is optional, so the plugin activates
 * in JupyterLab and in Jupyter Notebook 7 alike.
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  Dialog,
  ICommandPalette,
  IThemeManager,
  IToolbarWidgetRegistry,
  Notification,
  showDialog
} from '@jupyterlab/apputils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { ILauncher } from '@jupyterlab/launcher';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';
import { LabIcon } from '@jupyterlab/ui-components';
import { Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import gpuSvg from '../style/icons/gpu.svg';
import { GpuApiClient } from './api';
import { CREATE_BENCHMARK, registerBenchmarks } from './benchmarks/commands';
import { baseName } from './format';
import { GpuStatusItem } from './gpus/statusitem';
import { DOMAIN } from './i18n';
import { idleMessage } from './memory/idle';
import { kernelControl } from './memory/kernelcontrol';
import { kernelLabel } from './memory/kernelrow';
import { errorOutcome, Outcome, releaseOutcome } from './memory/outcome';
import { scriptName } from './memory/scripts';
import { leakLine } from './memory/words';
import { GpuPanel, IPanelActions } from './panel';
import { registerPlacement } from './placement/commands';
import { restartOnGpu } from './placement/picker';
import {
  clampInterval,
  DEFAULT_SETTINGS,
  IPanelSettings,
  parseSettings
} from './settings';
import { GpuStore } from './store';
import { IKernelInfo, IScriptInfo } from './types';

const PLUGIN_ID = 'jupyter-gpu-panel:plugin';
/** The top-bar item's name in schema/plugin.json's jupyter.lab.toolbars. */
const TOP_BAR_ITEM = 'gpu-panel-status';
const OPEN = 'gpu-panel:open';

export const gpuIcon = new LabIcon({
  name: 'jupyter-gpu-panel:gpu',
  svgstr: gpuSvg
});

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
    let settings: IPanelSettings = DEFAULT_SETTINGS;
    let themeKey = themeManager?.theme ?? 'default';
    const settingsChanged = new Signal<object, void>({});
    const client = new GpuApiClient(app.serviceManager.serverSettings);
    // Opened on the kernel it already runs on: JupyterLab then connects to that kernel
    // instead of asking which one to use when it has not yet seen the notebook's session.
    const openNotebook = (path: string, kernelId?: string | null) => {
      void app.commands.execute('docmanager:open', {
        path,
        ...(kernelId ? { kernel: { id: kernelId } } : {})
      });
    };

    // The server's message names the rate, the time and the step of the OOM;
    // a toast shows ~140 characters, so it goes alone.
    const warnLeak = (
      name: string,
      leak: IKernelInfo['leak'],
      notebook: string | null,
      kernelId: string | null
    ) => {
      const actions: Notification.IAction[] = [];
      if (notebook) {
        actions.push({
          label: trans.__('Open notebook'),
          callback: () => openNotebook(notebook, kernelId)
        });
      }
      actions.push({
        label: trans.__('Open GPU panel'),
        callback: () => void app.commands.execute(OPEN)
      });
      Notification.warning(
        trans.__(
          'GPU memory leak in %1: %2',
          name,
          leakLine(leak, settings.memoryUnits, trans)
        ),
        { autoClose: false, actions }
      );
    };
    const onLeak = (k: IKernelInfo) =>
      warnLeak(
        k.notebook ? baseName(k.notebook) : (k.kernel_name ?? k.kernel_id),
        k.leak,
        k.notebook,
        k.kernel_id
      );
    // A script outside any kernel (a terminal's training run): named by its command.
    const onScriptLeak = (sc: IScriptInfo) =>
      warnLeak(scriptName(sc, trans), sc.leak, null, null);

    // An idle holder: once per episode, with Release cached memory on the
    // toast (its outcome in the same toast); gone when the episode ends.
    const idleToasts = new Map<string, string>();
    const releaseFromToast = async (kernelId: string, name: string) => {
      const toast = Notification.emit(
        trans.__('Releasing the cached GPU memory of %1…', name),
        'in-progress',
        { autoClose: false }
      );
      let outcome: Outcome;
      try {
        outcome = releaseOutcome(await store.releaseCache(kernelId), trans);
      } catch (err) {
        outcome = errorOutcome('release', err, trans);
      }
      if (outcome.kind === 'done') {
        Notification.update({
          id: toast,
          message: trans.__('%1: %2', name, outcome.message),
          type: outcome.level === 'error' ? 'error' : 'success',
          autoClose: outcome.level === 'error' ? false : 8000
        });
      }
    };
    const onIdleHolder = (k: IKernelInfo) => {
      const name = kernelLabel(k, trans);
      const id = Notification.warning(
        trans.__('%1: %2', name, idleMessage(k, settings.memoryUnits, trans)),
        {
          autoClose: false,
          actions: [
            {
              label: trans.__('Release cached memory'),
              caption: trans.__(
                "Give torch's cached GPU memory back; the kernel's variables are kept"
              ),
              callback: () => void releaseFromToast(k.kernel_id, name)
            },
            {
              label: trans.__('Open GPU panel'),
              callback: () => void app.commands.execute(OPEN)
            }
          ]
        }
      );
      idleToasts.set(k.kernel_id, id);
    };
    const onIdleHolderEnd = (kernelId: string) => {
      const id = idleToasts.get(kernelId);
      if (id !== undefined) {
        idleToasts.delete(kernelId);
        Notification.dismiss(id);
      }
    };
    const store = new GpuStore({
      client,
      onLeak,
      onScriptLeak,
      onIdleHolder,
      onIdleHolderEnd
    });

    const addTemplates = registerBenchmarks(app, {
      client,
      icon: gpuIcon,
      trans,
      currentDir: () => fileBrowser?.model.path ?? '',
      launcher,
      palette
    });
    registerPlacement(app, {
      client,
      icon: gpuIcon,
      trans,
      units: () => settings.memoryUnits,
      currentDir: () => fileBrowser?.model.path ?? '',
      launcher,
      palette
    });
    store.changed.connect((_, kind) => {
      if (kind === 'benchmarks') {
        addTemplates(store.state.benchmarks);
      }
    });

    const actions: IPanelActions = {
      openNotebook,
      setChartWindow: (seconds: number) => {
        if (settingRegistry) {
          void settingRegistry.set(PLUGIN_ID, 'chartWindow', seconds);
        } else {
          settings = { ...settings, chartWindow: seconds };
          panel.update();
        }
      },
      createBenchmark: async (template: string) => {
        await app.commands.execute(CREATE_BENCHMARK, { template });
      },
      confirm: async (title, body, accept) => {
        const r = await showDialog({
          title,
          body,
          buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: accept })]
        });
        return r.button.accept;
      },
      kernels: {
        ...kernelControl(
          app.serviceManager.kernels,
          app.serviceManager.serverSettings,
          store
        ),
        restartOnGpu: async (kernelId: string, label: string) => {
          const gpu = await restartOnGpu(
            client,
            kernelId,
            label,
            settings.memoryUnits,
            trans
          );
          void store.refreshKernels();
          return gpu;
        }
      }
    };

    const panel = new GpuPanel(
      store,
      () => settings,
      () => themeKey,
      actions,
      trans,
      gpuIcon
    );
    app.shell.add(panel, 'right', { rank: 900 });
    restorer?.add(panel, 'jupyter-gpu-panel');

    // Interval: the user's choice, never below the server's floor.
    let sentInterval: number | null = null;
    const applyInterval = () => {
      const want = clampInterval(
        settings.refreshInterval,
        store.state.status?.min_interval
      );
      if (want !== sentInterval) {
        sentInterval = want;
        store.setInterval(want);
      }
    };
    store.changed.connect((_, kind) => {
      if (kind === 'status') {
        applyInterval();
      }
    });
    const applySettings = () => {
      store.setLeakHorizon(
        settings.leakForecastMinutes * 60,
        settings.leakNotifications
      );
      applyInterval();
      panel.update();
      settingsChanged.emit();
    };
    if (settingRegistry) {
      settingRegistry
        .load(PLUGIN_ID)
        .then(s => {
          const read = () => {
            settings = parseSettings(s.composite as any);
            applySettings();
          };
          read();
          s.changed.connect(read);
        })
        .catch(err => {
          console.warn('gpu-panel: settings unavailable, using defaults', err);
          applySettings();
        });
    } else {
      applySettings();
    }

    themeManager?.themeChanged.connect((_, args) => {
      // Canvas charts read --jp-* colours at creation: recreate them. Twice,
      // because the new theme's CSS may still be applying on the first pass.
      themeKey = `${args.newValue}-${Date.now()}`;
      panel.update();
      window.setTimeout(() => {
        themeKey = `${args.newValue}-${Date.now()}`;
        panel.update();
      }, 300);
    });

    app.commands.addCommand(OPEN, {
      label: trans.__('Open GPU panel'),
      caption: trans.__('Show live GPU metrics in the sidebar'),
      icon: gpuIcon,
      execute: () => app.shell.activateById(panel.id)
    });
    palette?.addItem({ command: OPEN, category: 'GPU' });

    const item = new GpuStatusItem(
      store,
      () => settings.memoryUnits,
      () => void app.commands.execute(OPEN),
      trans
    );
    settingsChanged.connect(() => item.update());
    if (statusBar) {
      statusBar.registerStatusItem('jupyter-gpu-panel:status', {
        item,
        align: 'left',
        rank: 100,
        isActive: () => settings.statusBar,
        activeStateChanged: settingsChanged
      });
    }
    // Notebook 7 has no status bar: the same item goes in its top bar. Where
    // there is a status bar (JupyterLab) the top-bar slot stays empty.
    toolbarRegistry?.addFactory('TopBar', TOP_BAR_ITEM, () => {
      if (statusBar) {
        const empty = new Widget();
        empty.hide();
        return empty;
      }
      item.addClass('jp-GpuPanel-topBarItem');
      settingsChanged.connect(() => item.setHidden(!settings.statusBar));
      return item;
    });

    store.start();
  }
};

export default plugin;
