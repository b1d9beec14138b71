import {
  canMove,
  gpuChoiceText,
  IPlacement,
  kernelGpusText,
  pickable
} from '../src/placement/words';

const GiB = 2 ** 30;

describe('placement words', () => {
  it('says which GPUs a kernel may use and where that came from', () => {
    const row = {
      cuda_visible_devices: '3',
      readable: true,
      gpus: [3],
      source: 'placement' as const,
      reason: 'most-free-memory: GPU 3'
    };
    expect(kernelGpusText(row)).toBe('GPU 3 (placed)');
    expect(kernelGpusText({ ...row, gpus: [1, 2], source: 'outside' })).toBe(
      'GPUs 1, 2 (set outside the panel)'
    );
    expect(
      kernelGpusText({
        ...row,
        gpus: null,
        cuda_visible_devices: null,
        source: 'off'
      })
    ).toBe('every GPU');
    expect(
      kernelGpusText({
        ...row,
        gpus: null,
        cuda_visible_devices: 'MIG-1',
        source: 'outside'
      })
    ).toBe('CUDA_VISIBLE_DEVICES=MIG-1 (set outside the panel)');
    expect(kernelGpusText(null)).toBe('unknown');
    expect(canMove({ ...row, source: 'outside' })).toBe(false);
    expect(canMove(row)).toBe(true);
  });

  it('offers the GPUs freest first, never a lost one', () => {
    const gpu = (index: number, free: number, extra = {}) => ({
      index,
      state: 'ok',
      mem_free: free,
      mem_total: 80 * GiB,
      util_avg: 12.4,
      holders: 1,
      reserved: 0,
      problem: null,
      ...extra
    });
    const doc: IPlacement = {
      policy: 'most-free-memory',
      gpus_per_kernel: 1,
      next: { gpus: [2], cuda_visible_devices: '2' },
      reason: 'most-free-memory: GPU 2',
      gpus: [
        gpu(0, 10 * GiB),
        gpu(1, 70 * GiB, { state: 'lost', problem: 'lost (fell off the bus)' }),
        gpu(2, 60 * GiB)
      ]
    };
    expect(pickable(doc).map(g => g.index)).toEqual([2, 0]);
    expect(gpuChoiceText(doc.gpus[2], 'GiB')).toBe(
      'GPU 2 · 60 GiB free · 1 holder · 12% busy'
    );
    expect(gpuChoiceText(doc.gpus[1], 'GiB')).toContain(
      'lost (fell off the bus)'
    );
  });
});
