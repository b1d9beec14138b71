/**
 * The one client for the server's api/gpu-panel/ endpoints. Everything that
 * talks HTTP or opens the stream socket goes through here, so auth (token,
 * XSRF cookie) and base URLs are handled in one place by ServerConnection.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { components, paths } from './api-schema';
import {
  HistoryField,
  IBenchmarkTemplate,
  IDeviceInfo,
  IHistoryResponse,
  IKernelsReply,
  ISnapshot,
  IStatus
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

/** POST kernels/{kernel_id}/{action}: the actions the contract names. */
export type KernelAction =
  paths['/api/gpu-panel/kernels/{kernel_id}/{action}']['post']['parameters']['path']['action'];

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

  /** Kernels and probed scripts, one request. */
  kernels(): Promise<IKernelsReply> {
    return this.request<IKernelsReply>('kernels');
  }

  /** Ask a script's probe (no kernel) to record its allocations: 202, or 404 when it is gone. */
  probeTriage(pid: number): Promise<unknown> {
    return this.request(`probes/${encodeURIComponent(String(pid))}/triage`, {
      method: 'POST',
      body: '{}'
    });
  }

  kernelAction(kernelId: string, action: KernelAction): Promise<unknown> {
    return this.request(`kernels/${encodeURIComponent(kernelId)}/${action}`, {
      method: 'POST',
      body: '{}'
    });
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
