/**
 * The settings as they are now (the Settings Editor's, or the defaults
 * where there is no setting registry), with a signal when they change, and
 * what follows them in the store: the tick interval (never below the
 * server's floor) and the leak notifications' horizon.
 */
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { ISignal, Signal } from '@lumino/signaling';

import {
  clampInterval,
  DEFAULT_SETTINGS,
  IPanelSettings,
  parseSettings
} from '../settings';
import { GpuStore } from '../store';
import { PLUGIN_ID } from './ids';

export class LiveSettings {
  constructor(private readonly _registry: ISettingRegistry | null) {}

  get current(): IPanelSettings {
    return this._current;
  }

  /** Emitted when the settings are read or changed (once at least, by `load`). */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** Read the registry and follow its changes; the defaults where there is none or it fails. */
  load(): void {
    if (!this._registry) {
      this._changed.emit();
      return;
    }
    this._registry
      .load(PLUGIN_ID)
      .then(s => {
        const read = () => this._set(parseSettings(s.composite));
        read();
        s.changed.connect(read);
      })
      .catch(err => {
        console.warn('gpu-panel: settings unavailable, using defaults', err);
        this._changed.emit();
      });
  }

  /** The charts' window: saved through the registry (and read back from it), or kept here without one. */
  setChartWindow(seconds: number): void {
    if (this._registry) {
      void this._registry.set(PLUGIN_ID, 'chartWindow', seconds);
    } else {
      this._set({ ...this._current, chartWindow: seconds });
    }
  }

  private _set(settings: IPanelSettings): void {
    this._current = settings;
    this._changed.emit();
  }

  private _current: IPanelSettings = DEFAULT_SETTINGS;
  private _changed = new Signal<this, void>(this);
}

/** The store follows the settings: leak horizon, and the interval asked of the server (again when its floor is known). */
export function storeFollowsSettings(
  store: GpuStore,
  settings: LiveSettings
): void {
  let sentInterval: number | null = null;
  const applyInterval = () => {
    const want = clampInterval(
      settings.current.refreshInterval,
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
  settings.changed.connect(() => {
    const s = settings.current;
    store.setLeakHorizon(s.leakForecastMinutes * 60, s.leakNotifications);
    applyInterval();
  });
}
