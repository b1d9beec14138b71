/**
 * Which kernels and scripts to notify about, from each kernels document,
 * once per episode: a leak whose out-of-memory forecast falls inside the
 * reader's horizon (while leak notifications are on), an idle GPU holder
 * (when its episode starts and when it ends), and a probed run that ran
 * out of memory (once per OOM). The store feeds it the
 * documents; the plugin's callbacks show the toasts.
 */
import { updateEpisodes } from './leakepisodes';
import { updateIdleEpisodes } from './memory/idle';
import { updateOomEpisodes } from './memory/oom';
import { IKernelInfo, IScriptInfo } from './types';

export interface IKernelAlertHandlers {
  /** Called once per kernel per leak episode. */
  onLeak?: (k: IKernelInfo) => void;
  /** Called once per probed script per leak episode. */
  onScriptLeak?: (s: IScriptInfo) => void;
  /** Called once per kernel per idle-holder episode (idle past the server's idle_after while holding GPU memory). */
  onIdleHolder?: (k: IKernelInfo) => void;
  /** Called with a kernel's id when its idle-holder episode ends (it woke up, released, restarted, or went away). */
  onIdleHolderEnd?: (kernelId: string) => void;
  /** Called once per OOM of a probed kernel (its verdict's state turned to "oom"). */
  onOom?: (k: IKernelInfo) => void;
  /** Called once per OOM of a probed script. */
  onScriptOom?: (s: IScriptInfo) => void;
}

export class KernelAlerts {
  constructor(private readonly _to: IKernelAlertHandlers) {}

  /** Warn of leaks forecast to run out of memory within `seconds`, or not at all. */
  setLeakHorizon(seconds: number, enabled: boolean): void {
    this._leakHorizon = seconds;
    this._leakNotify = enabled;
  }

  /** A new kernels document: call the handlers of the episodes it starts or ends. */
  update(kernels: IKernelInfo[], scripts: IScriptInfo[]): void {
    if (this._leakNotify) {
      const u = updateEpisodes(
        this._leakEpisodes,
        kernels,
        this._leakHorizon,
        scripts
      );
      this._leakEpisodes = u.open;
      u.notify.forEach(k => this._to.onLeak?.(k));
      u.notifyScripts.forEach(sc => this._to.onScriptLeak?.(sc));
    }
    const idle = updateIdleEpisodes(this._idleEpisodes, kernels);
    this._idleEpisodes = idle.open;
    idle.ended.forEach(id => this._to.onIdleHolderEnd?.(id));
    idle.starting.forEach(k => this._to.onIdleHolder?.(k));
    const oom = updateOomEpisodes(this._oomEpisodes, kernels, scripts);
    this._oomEpisodes = oom.open;
    oom.kernels.forEach(k => this._to.onOom?.(k));
    oom.scripts.forEach(sc => this._to.onScriptOom?.(sc));
  }

  private _leakHorizon = 1800;
  private _leakNotify = true;
  private _leakEpisodes: Set<string> = new Set();
  private _idleEpisodes: Set<string> = new Set();
  private _oomEpisodes: Set<string> = new Set();
}
