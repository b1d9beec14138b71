/**
 * The GPU picker: a dialog listing the node's GPUs with their free memory,
 * holders and problems (GET placement), freest first, preselecting the GPU
 * placement would choose. Used by *New notebook on GPU…* and *Restart on GPU…*.
 */
import { Dialog, ReactWidget, showDialog } from '@jupyterlab/apputils';
import * as React from 'react';

import { GpuApiClient } from '../api';
import { MemoryUnits } from '../format';
import { ITrans } from '../i18n';
import { gpuChoiceText, IPlacement, pickable } from './words';

class GpuChoice
  extends ReactWidget
  implements Dialog.IBodyWidget<number | null>
{
  constructor(
    private readonly doc: IPlacement,
    private readonly units: MemoryUnits,
    private readonly trans: ITrans,
    private readonly intro: string
  ) {
    super();
    const offered = pickable(doc);
    const next = doc.next?.gpus[0];
    this.chosen = offered.some(g => g.index === next)
      ? (next as number)
      : (offered[0]?.index ?? null);
    this.addClass('jp-GpuPanel-gpuPicker');
  }

  getValue(): number | null {
    return this.chosen;
  }

  protected render(): JSX.Element {
    const offered = pickable(this.doc);
    return (
      <div className="jp-GpuPanel-dialog">
        <p>{this.intro}</p>
        {offered.length === 0 ? (
          <p>{this.trans.__('No GPU can be chosen on this node.')}</p>
        ) : (
          <ul className="jp-GpuPanel-gpuChoices" role="radiogroup">
            {offered.map(g => (
              <li key={g.index}>
                <label>
                  <input
                    type="radio"
                    name="gpu-panel-gpu"
                    value={g.index}
                    data-gpu={g.index}
                    defaultChecked={g.index === this.chosen}
                    onChange={() => {
                      this.chosen = g.index;
                    }}
                  />{' '}
                  {gpuChoiceText(g, this.units, this.trans)}
                </label>
              </li>
            ))}
          </ul>
        )}
      </div>
    );
  }

  private chosen: number | null;
}

/** The GPU the user picked, or null when they cancelled (or there is none). */
export async function pickGpu(
  client: GpuApiClient,
  opts: {
    title: string;
    intro: string;
    accept: string;
    units: MemoryUnits;
    trans: ITrans;
  }
): Promise<number | null> {
  const doc = await client.placement();
  const body = new GpuChoice(doc, opts.units, opts.trans, opts.intro);
  const result = await showDialog({
    title: opts.title,
    body,
    buttons: [
      Dialog.cancelButton({ label: opts.trans.__('Cancel') }),
      Dialog.okButton({ label: opts.accept })
    ]
  });
  return result.button.accept ? result.value : null;
}

/** Restart a kernel on another GPU: pick it, then confirm that the kernel's variables are lost. */
export async function restartOnGpu(
  client: GpuApiClient,
  kernelId: string,
  label: string,
  units: MemoryUnits,
  trans: ITrans
): Promise<number | null> {
  const gpu = await pickGpu(client, {
    title: trans.__('Restart on GPU…'),
    intro: trans.__('Restart the kernel of %1 on the GPU you choose:', label),
    accept: trans.__('Next'),
    units,
    trans
  });
  if (gpu === null) {
    return null;
  }
  const ok = await showDialog({
    title: trans.__('Restart on GPU %1?', gpu),
    body: trans.__(
      'Restarting the kernel of %1 on GPU %2 loses all its variables: every cell must run again. Its GPU memory is freed.',
      label,
      gpu
    ),
    buttons: [
      Dialog.cancelButton({ label: trans.__('Cancel') }),
      Dialog.warnButton({ label: trans.__('Restart on GPU %1', gpu) })
    ]
  });
  if (!ok.button.accept) {
    return null;
  }
  await client.restartOnGpus(kernelId, [gpu]);
  return gpu;
}
