/**
 * GENERATED FILE, DO NOT EDIT: the types of the server's API contract
 * ../jupyter_gpu_panel/api/openapi.json, written by `jlpm gen:types`
 * (scripts/gen-types.mjs, openapi-typescript). After changing the contract,
 * run `jlpm gen:types` and commit this file; `jlpm check:types` (CI) fails
 * while it differs from what the contract generates.
 */

export interface paths {
    "/api/gpu-panel/status": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Source, state, versions and sampler health */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Status */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Status"];
                    };
                };
                /** @description Not authenticated, or not authorized for the gpu-panel resource */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/gpu-panel/devices": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Static facts per GPU */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Devices */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Devices"];
                    };
                };
                /** @description Not authenticated, or not authorized for the gpu-panel resource */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/gpu-panel/snapshot": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The latest readings, processes included */
        get: {
            parameters: {
                query?: {
                    /** @description Comma-separated GPU fields to include (index, t, state and error are always sent): util_gpu, util_mem, mem_total, mem_used, mem_free, mem_reserved, temp_c, power_mw, power_limit_mw, clock_sm, clock_mem, pstate, throttle_reasons, fan_pct, pcie_tx_kbps, pcie_rx_kbps, pcie_gen, pcie_width, energy_mj, ecc_errors_volatile, nvlink_active, processes. */
                    fields?: string;
                };
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Snapshot */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Snapshot"];
                    };
                };
                /** @description An unknown field */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Not authenticated, or not authorized for the gpu-panel resource */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/gpu-panel/history": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Time series per GPU and per process, oldest first */
        get: {
            parameters: {
                query?: {
                    /** @description Only samples after this Unix time. */
                    since?: number;
                    /** @description Comma-separated: util_gpu, util_mem, mem_used, mem_total, temp_c, power_mw, clock_sm, clock_mem, pcie_tx_kbps, pcie_rx_kbps. A field named more than once is answered once; an unknown one is a 400. */
                    fields?: string;
                    /** @description Downsample to at most this many points per series (bucket mean; memory keeps the bucket maximum). 0: all. */
                    max_points?: number;
                    /** @description Comma-separated GPU indices (0-1023) of GPUs this server has. */
                    gpu?: string;
                };
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description History */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["History"];
                    };
                };
                /** @description A bad since, field, max_points or gpu (an index this server has no GPU for) */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Not authenticated, or not authorized for the gpu-panel resource */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/gpu-panel/stream": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** WebSocket. The server sends StreamMessage documents: {type: hello, status} then {type: snapshot, snapshot} every tick, and {type: kernels, kernels} when the kernels document changes. Send a StreamRequest {interval: s, fields: [...]} to slow down or select fields; the server answers {type: config, interval, fields} and never sends faster than min_interval (0.1 s) or its own tick; a bad message gets {type: error, message} and the socket stays open. Backpressure: each client has one write in flight and a bounded queue where a newer snapshot or kernels document replaces a queued one (a slow client sees gaps in kernels.seq and snapshot.t, never a step back); a client that leaves a message unread for GPUPanel.stream_stall_timeout seconds (default 30) is closed with code 1008 and reason 'client too slow: not read for 30 s' (or 'client too slow: 32 answers unread' when it sends requests and never reads the answers). */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Switching protocols; then StreamMessage documents (see components.schemas.StreamMessage) */
                101: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content?: never;
                };
                /** @description Not a websocket upgrade request (tornado's plain-text answer) */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "text/html": string;
                    };
                };
                /** @description Not authenticated, or not authorized for the gpu-panel resource (jupyter_server's HTML error page: a websocket handshake is not an API call) */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "text/html": string;
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/gpu-panel/openapi.json": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** This document */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description OpenAPI 3.1 */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            openapi: string;
                        };
                    };
                };
                /** @description Not authenticated, or not authorized for the gpu-panel resource */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/gpu-panel/kernels": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Per Jupyter kernel: notebook, GPU pids, memory per GPU and its history, probe readings and leak verdict; and the probes of scripts in no kernel */
        get: {
            parameters: {
                query?: {
                    /** @description 1: refresh now rather than serve the last periodic refresh. */
                    refresh?: "0" | "1";
                };
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Kernels */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Kernels"];
                    };
                };
                /** @description refresh is not 0 or 1 */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Not authenticated, or not authorized for the gpu-panel resource */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/gpu-panel/kernels/{kernel_id}/{action}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Act on a kernel: interrupt, restart, shutdown; probe (load the in-kernel memory probe); triage (record a few steps of allocation history to name the leaking line); release (empty torch's cache in an idle kernel, variables kept) */
        post: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    kernel_id: string;
                    action: "interrupt" | "restart" | "shutdown" | "probe" | "triage" | "release";
                };
                cookie?: never;
            };
            requestBody?: {
                content: {
                    "application/json": components["schemas"]["KernelActionRequest"];
                };
            };
            responses: {
                /** @description interrupt, restart, shutdown: done; probe: the kernel's answer; release: what was released */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["KernelActionDone"] | components["schemas"]["ProbeLoaded"] | components["schemas"]["Released"] | components["schemas"]["ReleaseFailed"];
                    };
                };
                /** @description triage: requested; the probe records the next `steps` optimizer steps and `GET kernels` shows the result under probe.triage */
                202: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["KernelTriageRequested"];
                    };
                };
                /** @description An unknown action; restart with gpus: not a list of integers, a GPU that does not exist or is lost, or more GPUs than the node has (the message names which) */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Not authenticated, or not authorized to execute kernels */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description No such kernel */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description triage: the kernel runs no memory probe, or its probe cannot be reached; release: the kernel is busy; restart with gpus: the kernel's CUDA_VISIBLE_DEVICES was set outside the panel, or its provisioner is not the panel's; restart: a restart of this kernel is under way (a double click): 'restart in progress' */
                409: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/gpu-panel/probes/{pid}/triage": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Ask a script's memory probe (one in no kernel: a script or torchrun rank that called jupyter_gpu_panel.probe.start()) to record a few steps of allocation history; the result appears under scripts[].probe.triage */
        post: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    pid: number;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description requested */
                202: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["ProbeTriageRequested"];
                    };
                };
                /** @description pid is not an integer in [1, 2**22] */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Not authenticated, or not authorized for the gpu-panel resource */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description No listed script with that pid: no running probe, or its probe file is refused (the message says why; see probe_warnings) */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description The probe is a kernel's, not a script's (ask the kernel's triage action), or it cannot be reached */
                409: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/gpu-panel/cluster": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The cluster from Prometheus: nodes, GPUs, who holds them (cached for cluster_refresh seconds); state says when Prometheus is not configured or not reachable; an answer of more than cluster_max_series series or cluster_max_bytes bytes is read up to the cap (state truncated, and the truncated object) */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Cluster */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Cluster"];
                    };
                };
                /** @description Not authenticated, or not authorized for the gpu-panel resource */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/gpu-panel/benchmarks": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Benchmark notebook templates */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Templates */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Templates"];
                    };
                };
                /** @description Not authenticated, or not authorized for the gpu-panel resource */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        put?: never;
        /** Create a benchmark notebook from a template through the contents manager (never overwrites: picks a free name, name-1.ipynb, ...) */
        post: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": components["schemas"]["CreateBenchmark"];
                };
            };
            responses: {
                /** @description Created */
                201: {
                    headers: {
                        /** @description the new notebook's contents API URL, percent-encoded (a header is Latin-1) */
                        Location: string;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["BenchmarkCreated"];
                    };
                };
                /** @description Bad body (not a small JSON object) or bad path (absolute, '..', control or bidi characters, a name over 255 bytes, a notebook name over 244 bytes (room for Jupyter's <name>-checkpoint.ipynb), a hidden folder, a file not ending in .ipynb). The free name beside an existing notebook (name-1.ipynb, ...) shortens a long name to fit */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Not authenticated, or not authorized for the gpu-panel resource */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description Unknown template, or the folder does not exist */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                /** @description No free name left in the folder */
                409: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/gpu-panel/placement": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** GPU placement of new kernels: the policy (c.GPUPanel.placement), the GPU(s) the next kernel would get and why, and each GPU's free memory, utilization over the last minute, holders and reservations */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Placement */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Placement"];
                    };
                };
                /** @description Not authenticated, or not authorized for the gpu-panel resource */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
}
export type webhooks = Record<string, never>;
export interface components {
    schemas: {
        /** @description jupyter_server's error body for every 4xx of an API route. */
        Error: {
            message: string;
            reason?: string | null;
        };
        /** @enum {string} */
        SourceState: "starting" | "ok" | "nvml-missing" | "driver-not-loaded" | "no-devices" | "error";
        /** @enum {string} */
        SourceName: "nvml" | "replay";
        Status: {
            version: string;
            source: components["schemas"]["SourceName"];
            state: components["schemas"]["SourceState"];
            message: string | null;
            driver_version: string | null;
            cuda_driver_version: string | null;
            nvml_version: string | null;
            replay_file: string | null;
            interval: number;
            min_interval: number;
            slow_interval: number;
            history_seconds: number;
            history_bytes: number;
            sampler: {
                running: boolean;
                ticks: number;
                reads: number;
                last_tick: number | null;
                tick_ms: number | null;
                errors: number;
                last_error: string | null;
            };
            /** @description c.GPUPanel.prometheus_url is set: GET cluster asks that Prometheus */
            cluster_configured: boolean;
        };
        /** @description Facts about a GPU that do not change while the server runs; unknown ones are null. */
        Device: {
            index: number;
            name: string | null;
            uuid: string | null;
            pci_bus_id: string | null;
            memory_total: number | null;
            power_limit_mw: number | null;
            clock_sm_max: number | null;
            clock_mem_max: number | null;
            pcie_gen_max: number | null;
            pcie_width_max: number | null;
            mig_mode: boolean | null;
            compute_capability: string | null;
        };
        Devices: {
            devices: components["schemas"]["Device"][];
        };
        /** @description Who owns a GPU process: a Jupyter kernel (with its notebook), a terminal, or another process; null when unknown. */
        Owner: {
            /** @constant */
            kind: "kernel";
            kernel_id: string;
            kernel_name: string | null;
            notebook: string | null;
            user: string | null;
            via_pid: number | null;
            /**
             * @description inside a container: matched by the probe's reserved bytes
             * @constant
             */
            matched_by?: "memory";
        } | {
            /** @constant */
            kind: "terminal";
            via_pid: number;
        } | {
            /** @constant */
            kind: "process";
        } | null;
        /** @description One process holding memory on one GPU. */
        Process: {
            pid: number;
            gpu: number;
            used: number | null;
            /** @enum {string} */
            type: "compute" | "graphics" | "compute+graphics";
            name: string | null;
            /** @description null for another user's process unless the server shows them */
            command: string | null;
            user: string | null;
            owner: components["schemas"]["Owner"];
        };
        /** @description One GPU at one instant. A field the card does not support is null; with `fields` only those (and the identity fields) are sent. */
        GPU: {
            index: number;
            t: number;
            /** @enum {string} */
            state: "ok" | "lost" | "unresponsive" | "error";
            error: string | null;
            util_gpu?: number | null;
            util_mem?: number | null;
            mem_total?: number | null;
            mem_used?: number | null;
            mem_free?: number | null;
            mem_reserved?: number | null;
            temp_c?: number | null;
            power_mw?: number | null;
            power_limit_mw?: number | null;
            clock_sm?: number | null;
            clock_mem?: number | null;
            pstate?: number | null;
            /** @description [] means unthrottled */
            throttle_reasons?: string[] | null;
            fan_pct?: number | null;
            pcie_tx_kbps?: number | null;
            pcie_rx_kbps?: number | null;
            pcie_gen?: number | null;
            pcie_width?: number | null;
            energy_mj?: number | null;
            ecc_errors_volatile?: number | null;
            nvlink_active?: number | null;
            processes?: components["schemas"]["Process"][];
        };
        Snapshot: {
            t: number | null;
            source: components["schemas"]["SourceName"];
            state: components["schemas"]["SourceState"];
            message: string | null;
            gpus: components["schemas"]["GPU"][];
        };
        /** @enum {string} */
        HistoryField: "util_gpu" | "util_mem" | "mem_used" | "mem_total" | "temp_c" | "power_mw" | "clock_sm" | "clock_mem" | "pcie_tx_kbps" | "pcie_rx_kbps";
        /** @description Columnar series, oldest first. */
        History: {
            now: number | null;
            interval: number;
            fields: components["schemas"]["HistoryField"][];
            gpus: {
                index: number;
                t: number[];
                /** @description one column per requested field, as long as t; null where not read */
                values: {
                    [key: string]: (number | null)[];
                };
            }[];
            processes: {
                gpu: number;
                pid: number;
                t: number[];
                used: (number | null)[];
            }[];
            /** @description null unless a Prometheus is configured and `since` asks for more than this server's own buffer; then what came from there (prepended to the GPU columns) */
            older: {
                /** @constant */
                source: "prometheus";
                /** @description Unix time the server's own buffer starts */
                until: number;
                points: number;
                error: string | null;
            } | null;
        };
        /** @description One validated step record of the probe (`*.iters.jsonl`). */
        StepRecord: {
            i: number;
            allocated?: number;
            reserved?: number;
            active?: number;
            inactive_split?: number;
            peak_allocated?: number;
            limit?: number;
            free?: number;
            max_allocated?: number;
            mem_total?: number;
            mem_limit?: number;
            memory_limit?: number;
            capacity?: number;
            alloc_retries?: number;
            num_ooms?: number;
            t?: number;
            dt?: number;
            loss?: number;
            device?: number;
            /** @constant */
            oom?: true;
            /**
             * @description an optimizer step, a top-level module call, or the probe's clock (code that runs neither)
             * @enum {string}
             */
            kind?: "step" | "forward" | "time";
            iter?: number;
            opt?: number;
            mod?: number;
            steps_per_iteration?: number;
        };
        /** @description Near-OOM from fragmentation; message suggests expandable_segments. Null without readings of the reserve. */
        Fragmentation: {
            fragmented: boolean;
            message: string | null;
            reserved?: number;
            allocated?: number;
            capacity?: number;
            reserved_share?: number;
            unallocated_share?: number;
            retries_rising?: boolean;
        } | null;
        /** @description The chart's forecast line, from the memory counted against the limit now to the limit at the forecast out-of-memory; null unless actionable. */
        Forecast: {
            /**
             * @description x is an optimizer step, or Unix seconds
             * @enum {string}
             */
            axis: "step" | "time";
            x0: number;
            /** @description bytes */
            y0: number;
            x1: number;
            /** @description bytes: the limit */
            y1: number;
        } | null;
        /** @description Verdict from the probe's per-step (per-iteration) readings. */
        StepsVerdict: {
            /** @constant */
            source: "steps";
            leak: boolean;
            /** @description would exhaust the memory available within 24 h at the observed rate */
            actionable: boolean;
            reason: string;
            headroom: number | null;
            capacity: number | null;
            level: number | null;
            message: string;
            forecast: components["schemas"]["Forecast"];
            onset_step: number | null;
            bytes_per_step: number;
            bytes_per_second: number | null;
            steps_to_oom: number | null;
            seconds_to_oom: number | null;
            evidence_steps: number;
            required_steps: number | null;
            fragmentation: components["schemas"]["Fragmentation"];
            current_step: number;
            skipped: number;
            /** @description says when the capacity was assumed */
            capacity_note: string | null;
            /**
             * @description which bound the headroom came from
             * @enum {string}
             */
            headroom_bound: "process cap" | "device free" | "capacity";
            /** @description hook calls per iteration; null when the records do not say */
            steps_per_iteration: number | null;
            /**
             * @description what an iteration is: optimizer steps, top-level module calls of a loop without an optimizer, or the probe's clock (positions in seconds)
             * @enum {string}
             */
            step_source: "optimizer" | "forward" | "timer";
            /**
             * @description oom: the run's newest record is a CUDA out-of-memory failure (no iteration came after it): message and oom explain it, and nothing is forecast (steps_to_oom, seconds_to_oom and forecast are null); running otherwise
             * @enum {string}
             */
            state: "running" | "oom";
            oom: components["schemas"]["OomReport"] | null;
        };
        /** @description A CUDA out-of-memory failure that ended the run (a cell, a script): where, what was asked and held, the largest holders by line, what to do */
        OomReport: {
            /** @description the iteration it failed in (the one after the last recorded) */
            step: number | null;
            /** @enum {string} */
            step_word: "step" | "iteration" | "second";
            t: number | null;
            /** @description the cell's id (a kernel) */
            cell: string | null;
            /** @description the cell's execution count: cell [12] */
            execution_count: number | null;
            /** @description bytes the failed allocation asked for */
            requested: number | null;
            /** @description bytes allocated at the failure (the allocator's counters, else torch's message) */
            allocated: number | null;
            reserved: number | null;
            /** @description what the process could allocate (card x memory fraction) */
            limit: number | null;
            /**
             * @description torch's OOM observer, the error that ended the cell or script, or a recorded trace's line
             * @enum {string}
             */
            source: "observer" | "exception" | "recorded";
            /** @description the user's line that asked */
            site: {
                where: string | null;
                code: string | null;
            } | null;
            holders: {
                bytes: number;
                /** @description 'cell line 8' or 'train.py:42' */
                where: string | null;
                code: string | null;
                /** @description the variable, when found from the failed frames */
                name: string | null;
                /**
                 * @description from the allocation history's stacks, or from the variables of the frames the error passed through
                 * @enum {string}
                 */
                how: "history" | "variable";
                /** @description a model's parameters or optimizer state */
                model: boolean;
                /** @description mostly an autograd graph's saved tensors */
                graph: boolean;
            }[];
            /** @description torch's message */
            error: string | null;
            advice: string[];
            message: string;
        };
        /** @description Verdict from NVML's per-process memory over time. */
        NvmlVerdict: {
            /** @constant */
            source: "nvml";
            leak: boolean;
            /** @description would exhaust the memory available within 24 h at the observed rate */
            actionable: boolean;
            reason: string;
            headroom: number | null;
            capacity: number | null;
            level: number | null;
            message: string;
            forecast: components["schemas"]["Forecast"];
            onset_time: number | null;
            bytes_per_second: number;
            seconds_to_oom: number | null;
            evidence_samples: number;
            required_samples: number | null;
            /**
             * @description which bound the headroom came from: the device's free memory (other processes count), or the card's size or a caller's capacity
             * @enum {string}
             */
            headroom_bound: "device free" | "capacity";
        };
        /** @description The leak detector's verdict: from the probe's per-step readings when loaded, else from NVML's per-process memory; null with too few readings. */
        LeakVerdict: components["schemas"]["StepsVerdict"] | components["schemas"]["NvmlVerdict"] | null;
        TriageStack: {
            where: string;
            code: string | null;
            bytes: number;
            bytes_per_step: number;
            count: number;
            every_step: boolean;
        };
        /** @description Which allocation stack's tensors survive the steps, from torch's allocation history recorded in the process (until two growth increments of the leak were seen, bounded by steps, time and the history's size); null until asked. */
        Triage: {
            /** @enum {string} */
            state: "requested" | "done" | "error";
            /** @description asked by the server on an alarm (GPUPanel.triage_on_alarm) */
            auto: boolean;
            requested_at: number | null;
            t: number | null;
            steps: number;
            message: string | null;
            error: string | null;
            stacks: components["schemas"]["TriageStack"][];
            /** @description how the recording went; null while requested */
            recording?: {
                /** @description steps (or seconds of the probe's clock) recorded */
                steps: number;
                seconds: number | null;
                /** @description growth increments the probe saw; null when no increment size was asked */
                increments: number | null;
                /** @description steps between increments, from the verdict */
                period: number | null;
                /**
                 * @description why it stopped: two increments and a step were seen, the steps asked, or a bound (max_steps, seconds, entries: the history's size)
                 * @enum {string|null}
                 */
                stopped: "increments" | "steps" | "max_steps" | "seconds" | "entries" | null;
                /** @description a bound ended it before the increments were seen (the message says so) */
                bounded: boolean;
            } | null;
        } | null;
        /** @description cells whose every run keeps more memory; message suggests `%reset -f out`. Null with fewer than 3 cell records. */
        CellLeaks: {
            leaking_cells: {
                cell: string;
                runs: number;
                bytes_per_run: number;
                errors: number;
            }[];
            message: string | null;
        } | null;
        /** @description The memory probe's readings, when one runs (null otherwise, or when its readings could not be judged: see probe_warnings). */
        Probe: {
            pid: number;
            kernel_id: string | null;
            device: number | null;
            limit: number | null;
            steps: number;
            skipped: number;
            last: components["schemas"]["StepRecord"] | null;
            alive: boolean;
            /** @description allocated and reserved bytes per optimizer step, thinned to about 600 points */
            series: {
                step: number[];
                allocated: number[];
                reserved: (number | null)[];
            };
            triage: components["schemas"]["Triage"];
            cells: components["schemas"]["CellLeaks"];
            fragmentation: components["schemas"]["Fragmentation"];
        } | null;
        /** @description an idle notebook sitting on GPU memory */
        Idle: {
            /** @description idle for this long; null unless idle */
            seconds: number | null;
            /** @description idle past idle_after while holding GPU memory */
            holder: boolean;
            /** @description bytes of torch's cache (reserved - allocated) at the probe's last reading: its last step, or the end of its last cell (a kernel that loaded the probe and ran no loop); null without a probe */
            cached: number | null;
            message: string | null;
        };
        /** @description a kernel shut down for sitting idle on GPU memory (cull_idle_gpu_kernels_after) */
        Culled: {
            kernel_id: string;
            notebook: string | null;
            t: number;
            idle_seconds: number | null;
            memory: number;
        };
        Kernel: {
            kernel_id: string;
            kernel_name: string | null;
            notebook: string | null;
            execution_state: string | null;
            user: string | null;
            pid: number | null;
            pids: number[];
            /** @description bytes per GPU index */
            memory: {
                [key: string]: number;
            };
            /** @description the kernel's GPU memory over time (NVML, its processes summed) */
            history: {
                t: number[];
                used: number[];
            };
            probe: components["schemas"]["Probe"];
            leak: components["schemas"]["LeakVerdict"];
            idle: components["schemas"]["Idle"];
            placement: components["schemas"]["KernelPlacement"];
        };
        /** @description a running probe that belongs to no kernel (a script, a torchrun rank) */
        Script: {
            pid: number;
            argv: string[];
            rank: string | null;
            owner: components["schemas"]["Owner"];
            probe: components["schemas"]["Probe"];
            leak: components["schemas"]["LeakVerdict"];
        };
        Kernels: {
            kernels: components["schemas"]["Kernel"][];
            scripts: components["schemas"]["Script"][];
            /**
             * @description 'host' when NVML pids match this server's, 'mismatch' when NVML reports host pids from inside a container (attribution then falls back to memory matching).
             * @enum {string}
             */
            pid_namespace: "host" | "mismatch";
            /** @description probe files refused or unreadable (newest last, at most 20) */
            probe_warnings: string[];
            /** @description newest last */
            culled: components["schemas"]["Culled"][];
        };
        KernelActionDone: {
            kernel_id: string;
            /** @enum {string} */
            action: "interrupt" | "restart" | "shutdown";
            /** @constant */
            ok: true;
            /** @description restart with gpus: where the kernel now runs */
            gpus?: number[];
        };
        /** @description ok: the kernel says the probe runs; queued: the kernel is busy and runs it after the current cell */
        ProbeLoaded: {
            kernel_id: string;
            /** @constant */
            action: "probe";
            ok: boolean;
            queued: boolean;
            message: string;
        };
        /** @description the kernel did not answer in time, or not as expected */
        ReleaseFailed: {
            kernel_id: string;
            /** @constant */
            action: "release";
            /** @constant */
            ok: false;
            message: string;
        };
        /** @description torch's cache emptied in the kernel (its variables kept), and the kernel's GPU memory as NVML saw it before and after */
        Released: {
            kernel_id: string;
            /** @constant */
            action: "release";
            /** @constant */
            ok: true;
            message: string;
            /** @description bytes torch's allocator gave back */
            freed: number;
            nvml_before: number;
            nvml_after: number;
            /** @description the kernel has imported torch */
            torch: boolean;
            /** @description torch in the kernel has used a GPU */
            cuda: boolean;
            reserved_before: number;
            reserved_after: number;
        };
        KernelTriageRequested: {
            kernel_id: string;
            /** @constant */
            action: "triage";
            /** @constant */
            requested: true;
            steps: number;
        };
        ProbeTriageRequested: {
            pid: number;
            /** @constant */
            action: "triage";
            /** @constant */
            requested: true;
            steps: number;
        };
        /** @enum {string} */
        TemplateName: "gpu-health-check" | "gpu-benchmark" | "gpu-class-lab";
        Templates: {
            templates: {
                name: components["schemas"]["TemplateName"];
                title: string;
                description: string;
            }[];
        };
        CreateBenchmark: {
            template: components["schemas"]["TemplateName"];
            /** @description Folder (or .ipynb file name) relative to the server root; empty or null: the root. No '..', backslash, control, format or bidi characters; names of at most 255 bytes. */
            path?: string | null;
        };
        BenchmarkCreated: {
            path: string;
        };
        /** @description A kernel holding memory on the GPU (named when it is the reader's, or when the deployment names other users) */
        ClusterHolder: {
            kernel_id: string;
            notebook: string | null;
            user: string | null;
            memory: number;
            leak_actionable: boolean;
            seconds_to_oom: number | null;
            idle_seconds: number | null;
            mine: boolean;
        };
        ClusterGPU: {
            node: string;
            /** @description NVML's index as the exporters label it */
            gpu: string | null;
            uuid: string | null;
            model: string | null;
            /** @description ratio, 0-1 */
            util: number | null;
            mem_used: number | null;
            mem_total: number | null;
            power_w: number | null;
            temp_c: number | null;
            sm_clock_hz: number | null;
            /** @description seconds since its last scrape */
            age_s: number | null;
            stale: boolean;
            sources: ("dcgm" | "jupyter")[];
            holders: components["schemas"]["ClusterHolder"][];
            /** @description holders not named: counted, with their memory */
            others: {
                /** @description kernels of other users on this GPU */
                count: number;
                /** @description distinct other users those kernels belong to */
                users: number;
                memory: number;
            };
            idle_holders: number;
            leak_alarms: number;
        };
        /** @description Every node and GPU the configured Prometheus knows (DCGM exporter's and these servers' series), and who holds each. */
        Cluster: {
            t: number;
            /** @enum {string} */
            state: "ok" | "not-configured" | "unreachable" | "no-gpu-series" | "stale" | "truncated";
            message: string | null;
            show_users: boolean;
            nodes: {
                node: string;
                gpus: components["schemas"]["ClusterGPU"][];
            }[];
            summary: {
                nodes: number;
                gpus: number;
                held: number;
                mine: number;
                leak_alarms: number;
                idle_holders: number;
                stale: number;
            } | null;
            truncated: {
                /**
                 * @description series: more than c.GPUPanel.cluster_max_series; bytes: longer than c.GPUPanel.cluster_max_bytes
                 * @enum {string}
                 */
                reason: "series" | "bytes";
                /** @description the cap that was reached */
                limit: number;
                /** @description series read before it */
                series_read: number;
            } | null;
        };
        /** @description What a client sends on the stream: a rate and/or a field selection. */
        StreamRequest: {
            /** @description seconds; never faster than the server's tick */
            interval?: number;
            fields?: ("util_gpu" | "util_mem" | "mem_total" | "mem_used" | "mem_free" | "mem_reserved" | "temp_c" | "power_mw" | "power_limit_mw" | "clock_sm" | "clock_mem" | "pstate" | "throttle_reasons" | "fan_pct" | "pcie_tx_kbps" | "pcie_rx_kbps" | "pcie_gen" | "pcie_width" | "energy_mj" | "ecc_errors_volatile" | "nvlink_active" | "processes")[] | null;
        };
        StreamHello: {
            /** @constant */
            type: "hello";
            status: components["schemas"]["Status"];
        };
        StreamSnapshot: {
            /** @constant */
            type: "snapshot";
            snapshot: components["schemas"]["Snapshot"];
        };
        StreamConfig: {
            /** @constant */
            type: "config";
            interval: number;
            /** @description []: every field */
            fields: ("util_gpu" | "util_mem" | "mem_total" | "mem_used" | "mem_free" | "mem_reserved" | "temp_c" | "power_mw" | "power_limit_mw" | "clock_sm" | "clock_mem" | "pstate" | "throttle_reasons" | "fan_pct" | "pcie_tx_kbps" | "pcie_rx_kbps" | "pcie_gen" | "pcie_width" | "energy_mj" | "ecc_errors_volatile" | "nvlink_active" | "processes")[];
        };
        /** @description the kernels document (as GET kernels answers it), pushed when it changes */
        StreamKernels: {
            /** @constant */
            type: "kernels";
            /** @description the kernels document's version on this server, +1 at each change: a client that read slowly sees a gap (the versions it skipped), never a step back */
            seq: number;
            kernels: components["schemas"]["Kernels"];
        };
        StreamError: {
            /** @constant */
            type: "error";
            message: string;
        };
        /** @description What the server sends on the stream: hello (once, first), snapshot (every tick at the client's rate), kernels (the kernels document, when it changes), config (the answer to a valid StreamRequest), error (the answer to a bad one; the socket stays open). */
        StreamMessage: components["schemas"]["StreamHello"] | components["schemas"]["StreamSnapshot"] | components["schemas"]["StreamKernels"] | components["schemas"]["StreamConfig"] | components["schemas"]["StreamError"];
        /** @description Which GPUs the kernel may use: CUDA_VISIBLE_DEVICES as its process has it, and where that came from. null: the panel's placement is not wired in */
        KernelPlacement: {
            /** @description as in the kernel's environment (read from the process where readable, else what placement set); null: unset, every GPU */
            cuda_visible_devices: string | null;
            /** @description whether the kernel process's environment could be read */
            readable: boolean;
            /** @description NVML indices the value names; null: every GPU, or nothing here it names (MIG, another node's UUID) */
            gpus: number[] | null;
            /**
             * @description placement: chosen by c.GPUPanel.placement; request: Restart on GPU N; outside: set by the user's environment, the kernelspec or the spawner (never overridden); off: not placed
             * @enum {string}
             */
            source: "placement" | "request" | "outside" | "off";
            /** @description why placement chose these GPUs, left them, or fell back to off */
            reason: string | null;
        } | null;
        PlacementGPU: {
            index: number;
            /** @description ok, lost, unresponsive or error */
            state: string;
            /** @description bytes */
            mem_free: number | null;
            /** @description bytes */
            mem_total: number | null;
            /** @description GPU utilization (%) averaged over the last minute */
            util_avg: number | null;
            /** @description kernels and other processes holding memory on it */
            holders: number;
            /** @description starting kernels that chose it and do not show on it yet (reserved up to 60 s) */
            reserved: number;
            /** @description why placement avoids it (lost, unresponsive, ECC errors, thermal throttling); null: fit */
            problem: string | null;
        };
        Placement: {
            /** @enum {string} */
            policy: "off" | "most-free-memory" | "least-utilized" | "spread";
            gpus_per_kernel: number;
            /** @description what the next kernel started would get; null: it sees every GPU (off, CUDA_VISIBLE_DEVICES set outside, or no fit GPU: see reason) */
            next: {
                gpus: number[];
                cuda_visible_devices: string;
            } | null;
            reason: string;
            gpus: components["schemas"]["PlacementGPU"][];
        };
        /** @description restart only, optional: the GPUs the restarted kernel gets (its CUDA_VISIBLE_DEVICES). Other actions take no body */
        KernelActionRequest: {
            /** @description NVML indices (PCI bus order) */
            gpus?: number[];
        };
    };
    responses: never;
    parameters: never;
    requestBodies: never;
    headers: never;
    pathItems: never;
}
export type $defs = Record<string, never>;
export type operations = Record<string, never>;
