/**
 * The API client's kernel actions against a fake ServerConnection: the
 * triage route and body, and the server's 409 message surfacing as the error.
 */
const calls: Array<{ url: string; init: { method?: string; body?: string } }> = [];
let reply: { status: number; body: string } = { status: 202, body: '{"requested": true, "steps": 4}' };

jest.mock('@jupyterlab/services', () => ({
  ServerConnection: {
    makeSettings: () => ({ baseUrl: 'http://h/base/', wsUrl: 'ws://h/base/' }),
    makeRequest: async (url: string, init: { method?: string; body?: string }) => {
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

describe('GpuApiClient.kernelAction', () => {
  beforeEach(() => {
    calls.length = 0;
  });

  it('posts {} to kernels/{id}/triage', async () => {
    const c = new GpuApiClient();
    await expect(c.kernelAction('a b', 'triage')).resolves.toEqual({ requested: true, steps: 4 });
    expect(calls).toHaveLength(1);
    expect(calls[0].url).toBe('http://h/base/api/gpu-panel/kernels/a%20b/triage');
    expect(calls[0].init).toEqual({ method: 'POST', body: '{}' });
  });

  it("raises the server's message on 409", async () => {
    reply = { status: 409, body: '{"message": "this kernel has no memory probe: track its memory first"}' };
    const c = new GpuApiClient();
    const err = (await c.kernelAction('k', 'triage').catch(e => e)) as ApiError;
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(409);
    expect(err.message).toBe('this kernel has no memory probe: track its memory first');
  });
});
