/**
 * The API client's kernel actions against a fake ServerConnection: the
 * triage routes (kernels and scripts) and body, the server's 409/404 message
 * surfacing as the error, and the kernels reply with or without scripts.
 */
const calls: Array<{ url: string; init: { method?: string; body?: string } }> =
  [];
let reply: { status: number; body: string } = {
  status: 202,
  body: '{"requested": true, "steps": 4}'
};

jest.mock('@jupyterlab/services', () => ({
  ServerConnection: {
    makeSettings: () => ({ baseUrl: 'http://h/base/', wsUrl: 'ws://h/base/' }),
    makeRequest: async (
      url: string,
      init: { method?: string; body?: string }
    ) => {
      calls.push({ url, init });
      return {
        ok: reply.status >= 200 && reply.status < 300,
        status: reply.status,
        statusText: 'x',
        text: async () => reply.body
      };
    }
  }
}));

import { ApiError, GpuApiClient } from '../src/api';

describe('GpuApiClient kernel routes', () => {
  beforeEach(() => {
    calls.length = 0;
  });

  it('posts {} to kernels/{id}/triage', async () => {
    const c = new GpuApiClient();
    await expect(c.kernelTriage('a b')).resolves.toEqual({
      requested: true,
      steps: 4
    });
    expect(calls).toHaveLength(1);
    expect(calls[0].url).toBe(
      'http://h/base/api/gpu-panel/kernels/a%20b/triage'
    );
    expect(calls[0].init).toEqual({ method: 'POST', body: '{}' });
  });

  it("raises the server's message on 409", async () => {
    reply = {
      status: 409,
      body: '{"message": "this kernel has no memory probe: track its memory first"}'
    };
    const c = new GpuApiClient();
    const err = (await c.kernelTriage('k').catch(e => e)) as ApiError;
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(409);
    expect(err.message).toBe(
      'this kernel has no memory probe: track its memory first'
    );
  });
});

describe('GpuApiClient probe', () => {
  beforeEach(() => {
    calls.length = 0;
  });

  it("posts {} to kernels/{id}/probe and returns the kernel's answer, ok or not", async () => {
    reply = {
      status: 200,
      body: JSON.stringify({
        kernel_id: 'k',
        action: 'probe',
        ok: false,
        queued: false,
        message:
          'jupyter-gpu-panel: torch is not installed: the GPU memory probe does nothing.'
      })
    };
    const r = await new GpuApiClient().loadProbe('k');
    expect(calls[0].url).toBe('http://h/base/api/gpu-panel/kernels/k/probe');
    expect(calls[0].init).toEqual({ method: 'POST', body: '{}' });
    expect(r.ok).toBe(false);
    expect(r.message).toMatch(/torch is not installed/);
  });
});

describe('GpuApiClient kernels and scripts', () => {
  beforeEach(() => {
    calls.length = 0;
  });

  it('reads kernels and scripts from one request', async () => {
    reply = {
      status: 200,
      body: JSON.stringify({
        kernels: [{ kernel_id: 'k' }],
        scripts: [
          {
            pid: 7,
            argv: ['train.py'],
            rank: null,
            owner: null,
            probe: {},
            leak: null
          }
        ]
      })
    };
    const r = await new GpuApiClient().kernels();
    expect(calls).toHaveLength(1);
    expect(calls[0].url).toBe('http://h/base/api/gpu-panel/kernels');
    expect(r.kernels.map(k => k.kernel_id)).toEqual(['k']);
    expect(r.scripts.map(s => s.pid)).toEqual([7]);
    await new GpuApiClient().kernels(true);
    expect(calls[1].url).toBe('http://h/base/api/gpu-panel/kernels?refresh=1');
  });

  it('posts {} to probes/{pid}/triage, and raises the 404 message', async () => {
    reply = {
      status: 202,
      body: '{"pid": 4242, "action": "triage", "requested": true, "steps": 4}'
    };
    const c = new GpuApiClient();
    await expect(c.probeTriage(4242)).resolves.toEqual({
      pid: 4242,
      action: 'triage',
      requested: true,
      steps: 4
    });
    expect(calls[0].url).toBe('http://h/base/api/gpu-panel/probes/4242/triage');
    expect(calls[0].init).toEqual({ method: 'POST', body: '{}' });
    reply = {
      status: 404,
      body: '{"message": "no memory probe with pid 4242"}'
    };
    const err = (await c.probeTriage(4242).catch(e => e)) as ApiError;
    expect(err.status).toBe(404);
    expect(err.message).toBe('no memory probe with pid 4242');
  });
});

describe('GpuApiClient release', () => {
  beforeEach(() => {
    calls.length = 0;
  });

  it("posts {} to kernels/{id}/release, and raises a busy kernel's 409 message", async () => {
    reply = {
      status: 200,
      body: JSON.stringify({
        kernel_id: 'k',
        action: 'release',
        ok: true,
        message: 'torch in this kernel has not used a GPU: nothing to release.',
        freed: 0,
        nvml_before: 0,
        nvml_after: 0,
        torch: true,
        cuda: false,
        reserved_before: 0,
        reserved_after: 0
      })
    };
    const c = new GpuApiClient();
    const r = await c.release('k 1');
    expect(calls[0].url).toBe(
      'http://h/base/api/gpu-panel/kernels/k%201/release'
    );
    expect(calls[0].init).toEqual({ method: 'POST', body: '{}' });
    expect(r.ok).toBe(true);
    expect(r.message).toMatch(/nothing to release/);
    reply = {
      status: 409,
      body: '{"message": "the kernel is busy: release its cached memory when its cell has ended"}'
    };
    const err = (await c.release('k').catch(e => e)) as ApiError;
    expect(err.status).toBe(409);
    expect(err.message).toMatch(/^the kernel is busy/);
  });
});
