/**
 * Benchmark notebooks: the create command (panel button, launcher tiles,
 * palette entries, one per server template). Before creating, it checks the
 * templates' kernel for torch and warns with the install command when it
 * is missing; the new notebook opens clean (the kernel filling in its
 * kernelspec and language metadata is not an edit).
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import {
  Dialog,
  ICommandPalette,
  ISessionContext,
  Notification,
  showDialog
} from '@jupyterlab/apputils';
import { ILauncher } from '@jupyterlab/launcher';
import { LabIcon } from '@jupyterlab/ui-components';
import * as React from 'react';

import { GpuApiClient } from '../api';
import { ITrans } from '../i18n';
import { IBenchmarkTemplate } from '../types';
import { CPU_TORCH_INSTALL, kernelHasTorch, kernelToCheck } from './torch';

export const CREATE_BENCHMARK = 'gpu-panel:create-benchmark';

/** The part of a document widget this needs (no docregistry dependency). */
interface IOpened {
  context?: {
    ready: Promise<void>;
    model: { dirty: boolean; toJSON(): unknown };
    sessionContext?: ISessionContext;
  };
}

function cellsOf(model: { toJSON(): unknown }): string {
  return JSON.stringify((model.toJSON() as { cells?: unknown }).cells ?? null);
}

/**
 * Keep a notebook just written by the server clean: once its kernel's info
 * and spec are in (they rewrite the kernelspec and language_info metadata),
 * a model whose cells are as loaded is not dirty.
 */
export async function keepClean(
  widget: IOpened | undefined,
  waitMs = 60000
): Promise<void> {
  const context = widget?.context;
  if (!context) {
    return;
  }
  await context.ready;
  const loaded = cellsOf(context.model);
  const settle = async () => {
    const session = context.sessionContext;
    if (!session) {
      return;
    }
    await session.ready;
    const kernel = session.session?.kernel;
    if (kernel) {
      await kernel.info;
      await kernel.spec;
    }
    await new Promise(resolve => window.setTimeout(resolve, 50));
  };
  await Promise.race([
    settle(),
    new Promise(resolve => window.setTimeout(resolve, waitMs))
  ]);
  if (context.model.dirty && cellsOf(context.model) === loaded) {
    context.model.dirty = false;
  }
}

function NoTorchBody(props: { kernel: string; trans: ITrans }): JSX.Element {
  const { trans } = props;
  return (
    <div className="jp-GpuPanel-dialog">
      <p>
        {trans.__(
          'The benchmark notebooks measure with PyTorch, and the %1 kernel cannot import torch: their cells would stop at the first import.',
          props.kernel
        )}
      </p>
      <p>
        {trans.__(
          "Install it into that kernel's environment, e.g. the CPU build (no GPU needed) from a notebook cell:"
        )}
      </p>
      <pre>
        <code>{CPU_TORCH_INSTALL}</code>
      </pre>
      <p>
        {trans.__(
          'On a machine with an NVIDIA GPU, install the CUDA build instead (%1).',
          '%pip install torch'
        )}
      </p>
    </div>
  );
}

export function registerBenchmarks(
  app: JupyterFrontEnd,
  opts: {
    client: GpuApiClient;
    icon: LabIcon;
    trans: ITrans;
    currentDir: () => string;
    launcher: ILauncher | null;
    palette: ICommandPalette | null;
  }
): (templates: IBenchmarkTemplate[]) => void {
  const { client, icon, trans, launcher, palette } = opts;
  const withTorch = new Set<string>();

  /** true: go on (torch is there, or nobody can tell); false: the user cancelled. */
  const confirmTorch = async (): Promise<boolean> => {
    const specs = app.serviceManager.kernelspecs;
    await specs.ready;
    const target = kernelToCheck(specs.specs);
    if (!target || withTorch.has(target.name)) {
      return true;
    }
    const has = await kernelHasTorch(app.serviceManager.kernels, target.name);
    if (has !== false) {
      if (has) {
        withTorch.add(target.name);
      }
      return true;
    }
    const r = await showDialog({
      title: trans.__('PyTorch is not installed in %1', target.displayName),
      body: <NoTorchBody kernel={target.displayName} trans={trans} />,
      buttons: [
        Dialog.cancelButton(),
        Dialog.warnButton({ label: trans.__('Create anyway') })
      ]
    });
    return r.button.accept;
  };

  app.commands.addCommand(CREATE_BENCHMARK, {
    // Launcher tiles sit under a "GPU" heading: the title alone reads best there.
    label: args =>
      !args.title
        ? trans.__('New GPU benchmark notebook')
        : args.isPalette
          ? trans.__('New benchmark notebook: %1', args.title as string)
          : (args.title as string),
    caption: args =>
      (args.description as string) ??
      trans.__('Create a GPU benchmark notebook'),
    icon: args => (args.isPalette ? undefined : icon),
    execute: async args => {
      const template = args.template as string;
      try {
        if (!(await confirmTorch())) {
          return;
        }
        const path = await client.createBenchmark(template, opts.currentDir());
        const widget = await app.commands.execute('docmanager:open', { path });
        void keepClean(widget as IOpened);
      } catch (err) {
        Notification.error(
          trans.__(
            'Could not create the %1 benchmark: %2',
            template,
            (err as Error).message
          ),
          { autoClose: 8000 }
        );
      }
    }
  });

  // One launcher tile and palette entry per template, once they load.
  const added = new Set<string>();
  return (templates: IBenchmarkTemplate[]) => {
    for (const t of templates) {
      if (added.has(t.name)) {
        continue;
      }
      added.add(t.name);
      const args = {
        template: t.name,
        title: t.title,
        description: t.description
      };
      launcher?.add({
        command: CREATE_BENCHMARK,
        args,
        category: 'GPU',
        rank: added.size
      });
      palette?.addItem({
        command: CREATE_BENCHMARK,
        args: { ...args, isPalette: true },
        category: 'GPU'
      });
    }
  };
}
