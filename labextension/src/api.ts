/**
 * The one client for the server's api/gpu-panel/ endpoints. Everything that
 * talks HTTP or opens the stream socket goes through here, so auth (token,
 * XSRF cookie) and base URLs are handled in one place by ServerConnection.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { components } from './api-schema';
import {
  HistoryField,
  IBenchmarkTemplate,
  IDeviceInfo,
  IHistoryResponse,
  IKernelsReply,
  IProbeLoaded,
  IReleaseReply,
  ISnapshot,
  IStatus,
  ITriageRequested
} from './types';

type Schemas = components['schemas'];

export const API_PREFIX = 'api/gpu-panel';

/** A failed request, with the HTTP status (0 when the network failed). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export class GpuApiClient {
  constructor(settings?: ServerConnection.ISettings) {
    this.settings = settings ?? ServerConnection.makeSettings();
  }

  readonly settings: ServerConnection.ISettings;

  url(path: string): string {
    return URLExt.join(this.settings.baseUrl, API_PREFIX, path);
  }

  async request<T>(path: string, init: RequestInit = {}): Promise<T> {
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(
        this.url(path),
        init,
        this.settings
      );
    } catch (err) {
      throw new ApiError(0, (err as Error).message || 'network error');
    }
    const text = await response.text();
    let data: any = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (!response.ok) {
      const msg =
        (data && (data.message || data.reason)) ||
        `${response.status} ${response.statusText}`;
      throw new ApiError(response.status, msg);
    }
    return data as T;
  }

  status(): Promise<IStatus> {
    return this.request<IStatus>('status');
  }

  async devices(): Promise<IDeviceInfo[]> {
    const r = await this.request<Schemas['Devices']>('devices');
    return r.devices;
  }

  snapshot(): Promise<ISnapshot> {
    return this.request<ISnapshot>('snapshot');
  }

  history(
    since: number,
    fields: readonly HistoryField[],
    maxPoints?: number
  ): Promise<IHistoryResponse> {
    const q: { [k: string]: string } = {
      since: String(since),
      fields: fields.join(',')
    };
    if (maxPoints) {
      q.max_points = String(maxPoints);
    }
    return this.request<IHistoryResponse>(
      `history${URLExt.objectToQueryString(q)}`
    );
  }

  /**
   * Kernels and probed scripts, one request. The stream pushes this document
   * when it changes; this is for an explicit refresh (`refresh`: the server
   * re-reads its kernels first).
   */
  kernels(refresh = false): Promise<IKernelsReply> {
    return this.request<IKernelsReply>(
      refresh ? 'kernels?refresh=1' : 'kernels'
    );
  }

  /** Load the memory probe into a kernel: the kernel's answer, ok or not. */
  loadProbe(kernelId: string): Promise<IProbeLoaded> {
    return this.request<IProbeLoaded>(
      `kernels/${encodeURIComponent(kernelId)}/probe`,
      { method: 'POST', body: '{}' }
    );
  }

  /**
   * *Release cached memory* in an idle kernel (torch.cuda.empty_cache(), its
   * variables kept): what the kernel gave back, in the server's words; 409
   * with the server's message when the kernel is busy.
   */
  release(kernelId: string): Promise<IReleaseReply> {
    return this.request<IReleaseReply>(
      `kernels/${encodeURIComponent(kernelId)}/release`,
      { method: 'POST', body: '{}' }
    );
  }

  /** GPU placement: the policy, the GPU(s) the next kernel would get and why, and each GPU. */
  placement(): Promise<Schemas['Placement']> {
    return this.request<Schemas['Placement']>('placement');
  }

  /** Restart a kernel on these GPUs (its CUDA_VISIBLE_DEVICES); 400/409 with the server's reason. */
  restartOnGpus(
    kernelId: string,
    gpus: number[]
  ): Promise<Schemas['KernelActionDone']> {
    return this.request<Schemas['KernelActionDone']>(
      `kernels/${encodeURIComponent(kernelId)}/restart`,
      { method: 'POST', body: JSON.stringify({ gpus }) }
    );
  }

  /** The cluster from the configured Prometheus (GET cluster); `state` says when there is none or it is unreachable. */
  cluster(): Promise<Schemas['Cluster']> {
    return this.request<Schemas['Cluster']>('cluster');
  }

  /** Ask a kernel's probe to record its allocations: 202, or 409 when it runs none. */
  kernelTriage(kernelId: string): Promise<ITriageRequested> {
    return this.request<ITriageRequested>(
      `kernels/${encodeURIComponent(kernelId)}/triage`,
      { method: 'POST', body: '{}' }
    );
  }

  /** Ask a script's probe (no kernel) to record its allocations: 202, or 404 when it is gone. */
  probeTriage(pid: number): Promise<ITriageRequested> {
    return this.request<ITriageRequested>(
      `probes/${encodeURIComponent(String(pid))}/triage`,
      { method: 'POST', body: '{}' }
    );
  }

  async benchmarks(): Promise<IBenchmarkTemplate[]> {
    const r = await this.request<Schemas['Templates']>('benchmarks');
    return r.templates;
  }

  async createBenchmark(template: string, path: string): Promise<string> {
    const r = await this.request<Schemas['BenchmarkCreated']>('benchmarks', {
      method: 'POST',
      body: JSON.stringify({ template, path })
    });
    return r.path;
  }

  /** URL of the stream socket; the token rides along only where Lab's own sockets send it. */
  streamUrl(): string {
    let url = URLExt.join(this.settings.wsUrl, API_PREFIX, 'stream');
    const token = this.settings.token;
    if (this.settings.appendToken && token) {
      url += `?token=${encodeURIComponent(token)}`;
    }
    return url;
  }

  openStream(): WebSocket {
    return new this.settings.WebSocket(this.streamUrl());
  }
}
