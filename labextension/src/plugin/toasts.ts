/**
 * The notifications the store's kernel alerts raise: a leak (in a notebook's
 * kernel, or in a probed script outside any kernel) once per episode, an
 * idle GPU holder once per episode, with *Release cached memory* on the
 * toast (its outcome in the same toast), dismissed when the episode ends,
 * and a probed run that ran out of memory, once per OOM.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { Notification } from '@jupyterlab/apputils';

import { baseName, MemoryUnits } from '../format';
import { ITrans } from '../i18n';
import { IKernelAlertHandlers } from '../kernelalerts';
import { idleMessage } from '../memory/idle';
import { kernelLabel } from '../memory/kernelrow';
import { errorOutcome, Outcome, releaseOutcome } from '../memory/outcome';
import { scriptName } from '../memory/scripts';
import { leakLine } from '../memory/words';
import { IKernelInfo, IReleaseReply, IScriptInfo } from '../types';
import { OPEN_PANEL } from './ids';

export interface IToastOptions {
  trans: ITrans;
  units: () => MemoryUnits;
  openNotebook: (path: string, kernelId?: string | null) => void;
  /** Release the cached GPU memory of an idle kernel (the store's). */
  release: (kernelId: string) => Promise<IReleaseReply>;
}

export function kernelToasts(
  app: JupyterFrontEnd,
  options: IToastOptions
): IKernelAlertHandlers {
  const { trans, units, openNotebook } = options;
  const openPanel: Notification.IAction = {
    label: trans.__('Open GPU panel'),
    callback: () => void app.commands.execute(OPEN_PANEL)
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
    actions.push(openPanel);
    Notification.warning(
      trans.__(
        'GPU memory leak in %1: %2',
        name,
        leakLine(leak, units(), trans)
      ),
      { autoClose: false, actions }
    );
  };

  const idleToasts = new Map<string, string>();
  const releaseFromToast = async (kernelId: string, name: string) => {
    const toast = Notification.emit(
      trans.__('Releasing the cached GPU memory of %1…', name),
      'in-progress',
      { autoClose: false }
    );
    let outcome: Outcome;
    try {
      outcome = releaseOutcome(await options.release(kernelId), trans);
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

  // The server's sentence names the step, the cell and the line holding the
  // memory; the panel's row lists what to do.
  const warnOom = (
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
    actions.push(openPanel);
    Notification.error(
      trans.__(
        '%1 ran out of GPU memory: %2',
        name,
        leakLine(leak, units(), trans)
      ),
      { autoClose: false, actions }
    );
  };

  return {
    onOom: (k: IKernelInfo) =>
      warnOom(kernelLabel(k, trans), k.leak, k.notebook, k.kernel_id),
    onScriptOom: (sc: IScriptInfo) =>
      warnOom(scriptName(sc, trans), sc.leak, null, null),
    onLeak: (k: IKernelInfo) =>
      warnLeak(
        k.notebook ? baseName(k.notebook) : (k.kernel_name ?? k.kernel_id),
        k.leak,
        k.notebook,
        k.kernel_id
      ),
    // A script outside any kernel (a terminal's training run): named by its command.
    onScriptLeak: (sc: IScriptInfo) =>
      warnLeak(scriptName(sc, trans), sc.leak, null, null),
    onIdleHolder: (k: IKernelInfo) => {
      const name = kernelLabel(k, trans);
      const id = Notification.warning(
        trans.__('%1: %2', name, idleMessage(k, units(), trans)),
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
            openPanel
          ]
        }
      );
      idleToasts.set(k.kernel_id, id);
    },
    onIdleHolderEnd: (kernelId: string) => {
      const id = idleToasts.get(kernelId);
      if (id !== undefined) {
        idleToasts.delete(kernelId);
        Notification.dismiss(id);
      }
    }
  };
}
