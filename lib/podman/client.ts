/**
 * A small libpod REST client over a Unix socket (`fetch` + `Deno.createHttpClient`, deno-notes.md
 * §1): ping, pull with streamed progress, inspect, exists.
 *
 * @module
 */
import { type Credentials, findCredentials } from "../registry/auth.ts";
import { parseRegistryReference } from "../registry/client.ts";
import { ndjsonLines, parsePullLine, type PullEvent, type PullResult } from "./pull_stream.ts";

/** libpod API prefix; podman 4.x and 5.x both serve it. */
const API = "/v4.0.0/libpod";

/** What `/_ping` says about the service. */
export interface PingInfo {
  /** `Libpod-Api-Version`, e.g. `4.3.1`. */
  libpodApiVersion: string;
  /** Docker-compatible `Api-Version`, e.g. `1.41`. */
  apiVersion: string;
}

/** Options of {@link LibpodClient.pull}. */
export interface PullOptions {
  /** false = plain HTTP / no certificate check (`tlsVerify=false`). */
  tlsVerify?: boolean;
  /** Pick this architecture from a multi-arch index (`arch=`). */
  arch?: string;
  /** `always` (default: a moved tag is re-resolved), `missing`, `newer`, `never`. */
  policy?: "always" | "missing" | "newer" | "never";
  /** Registry credentials, sent as `X-Registry-Auth`. */
  credentials?: Credentials;
  /**
   * An auth file (`--authfile`) to take the credentials for the reference's registry from. The
   * podman 4.3 service ignores `REGISTRY_AUTH_FILE` for API pulls, so they travel in the header.
   */
  authFile?: string;
  /** Called for every event of the stream, in order. */
  onProgress?: (event: PullEvent) => void;
  /** Aborts the request. */
  signal?: AbortSignal;
}

/** The fields of libpod's image inspect that bootcfs uses. */
export interface ImageInspect {
  /** Config digest hex (no `sha256:`), the image Id. */
  id: string;
  /** Digest of the manifest (or index) the image was first stored under. */
  digest: string;
  repoTags: string[];
  repoDigests: string[];
  /** Uncompressed layer digests (diffIDs), bottom first. */
  layers: string[];
  architecture: string;
  os: string;
  size: number;
  /** Storage driver name and its data (`LowerDir`, `UpperDir`, … for overlay). */
  graphDriver: { name: string; data: Record<string, string> };
  labels: Record<string, string>;
}

/** URL-safe base64 of a JSON value, as podman decodes `X-Registry-Auth` (Go's `base64.URLEncoding`). */
function base64UrlJson(value: unknown): string {
  let s = "";
  for (const b of new TextEncoder().encode(JSON.stringify(value))) s += String.fromCharCode(b);
  return btoa(s).replaceAll("+", "-").replaceAll("/", "_");
}

/** The `message` of a libpod error body `{"cause","message","response"}`, else the raw text. */
async function libpodError(res: Response): Promise<string> {
  const text = await res.text().catch(() => "");
  try {
    const m = (JSON.parse(text) as { message?: unknown }).message;
    if (typeof m === "string" && m !== "") return m;
  } catch {
    // Not JSON.
  }
  return text.trim().slice(0, 300) || res.statusText;
}

/**
 * A client for a libpod service listening on `socketPath`.
 *
 * @example
 * ```ts
 * const pod = new LibpodClient("/run/bootcfs/podman.sock");
 * const { id } = await pod.pull("127.0.0.1:5000/rig/base:1", { tlsVerify: false, onProgress: console.log });
 * const image = await pod.inspect(id);
 * pod.close();
 * ```
 */
export class LibpodClient {
  /** The service's socket. */
  readonly socketPath: string;
  #http: Deno.HttpClient;

  constructor(socketPath: string) {
    this.socketPath = socketPath;
    this.#http = Deno.createHttpClient({ proxy: { transport: "unix", path: socketPath } });
  }

  /** Closes the connection pool. */
  close(): void {
    this.#http.close();
  }

  async #fetch(method: string, path: string, what: string, init: RequestInit = {}): Promise<Response> {
    try {
      return await fetch(`http://d${path}`, { ...init, method, client: this.#http });
    } catch (e) {
      if ((e as Error).name === "AbortError") throw e;
      throw new Error(`${what}: cannot talk to the podman service at ${this.socketPath}`, { cause: e });
    }
  }

  /** `GET /_ping`: resolves when the service answers `OK`. */
  async ping(): Promise<PingInfo> {
    const res = await this.#fetch("GET", "/_ping", "pinging podman");
    const body = await res.text();
    if (!res.ok || body !== "OK") throw new Error(`pinging podman: HTTP ${res.status} ${body.slice(0, 100)}`);
    return {
      libpodApiVersion: res.headers.get("libpod-api-version") ?? "",
      apiVersion: res.headers.get("api-version") ?? "",
    };
  }

  /**
   * Pulls `reference` into the service's storage and returns the image id(s). Every line of the
   * reply goes to `onProgress`; an in-band `{"error":…}` line, a non-2xx answer or a stream that
   * ends without a result (service died) throws, naming the reference.
   */
  async pull(reference: string, options: PullOptions = {}): Promise<PullResult> {
    const what = `podman pull ${reference}`;
    const query = new URLSearchParams({ reference, policy: options.policy ?? "always", pullProgress: "true" });
    if (options.tlsVerify !== undefined) query.set("tlsVerify", String(options.tlsVerify));
    if (options.arch) query.set("arch", options.arch);
    const headers: Record<string, string> = {};
    let credentials = options.credentials;
    if (!credentials && options.authFile) {
      const ref = parseRegistryReference(reference);
      credentials = await findCredentials(ref.domain, ref.path, {}, options.authFile);
    }
    if (credentials) headers["x-registry-auth"] = base64UrlJson(credentials);
    const res = await this.#fetch("POST", `${API}/images/pull?${query}`, what, { headers, signal: options.signal });
    if (!res.ok) throw new Error(`${what}: HTTP ${res.status}: ${await libpodError(res)}`);
    if (!res.body) throw new Error(`${what}: empty reply from podman`);
    let result: PullResult | undefined;
    const lines = ndjsonLines(res.body);
    for (;;) {
      let next: IteratorResult<string>;
      try {
        next = await lines.next();
      } catch (e) {
        if ((e as Error).name === "AbortError") throw e;
        throw new Error(`${what}: the podman service connection broke during the pull (did the service exit?)`, {
          cause: e,
        });
      }
      if (next.done) break;
      const line = parsePullLine(next.value);
      if (line.type === "error") {
        await lines.return(undefined);
        throw new Error(`${what}: ${line.message}`);
      }
      if (line.type === "result") result = line.result;
      else if (line.type === "event") options.onProgress?.(line.event);
    }
    if (!result) throw new Error(`${what}: the podman service ended the reply without a result (did it exit?)`);
    return result;
  }

  /** `GET /libpod/images/{name}/json`; a missing image throws "image not known". */
  async inspect(name: string): Promise<ImageInspect> {
    const what = `inspecting image ${name}`;
    const res = await this.#fetch("GET", `${API}/images/${encodeURIComponent(name)}/json`, what);
    if (!res.ok) throw new Error(`${what}: ${await libpodError(res)}`);
    const j = await res.json() as {
      Id: string;
      Digest: string;
      RepoTags?: string[] | null;
      RepoDigests?: string[] | null;
      RootFS?: { Layers?: string[] | null };
      Architecture: string;
      Os: string;
      Size: number;
      GraphDriver?: { Name?: string; Data?: Record<string, string> | null };
      Labels?: Record<string, string> | null;
    };
    return {
      id: j.Id,
      digest: j.Digest,
      repoTags: j.RepoTags ?? [],
      repoDigests: j.RepoDigests ?? [],
      layers: j.RootFS?.Layers ?? [],
      architecture: j.Architecture,
      os: j.Os,
      size: j.Size,
      graphDriver: { name: j.GraphDriver?.Name ?? "", data: j.GraphDriver?.Data ?? {} },
      labels: j.Labels ?? {},
    };
  }

  /** `GET /libpod/images/{name}/exists`. */
  async exists(name: string): Promise<boolean> {
    const what = `checking image ${name}`;
    const res = await this.#fetch("GET", `${API}/images/${encodeURIComponent(name)}/exists`, what);
    if (res.status === 204) {
      await res.body?.cancel();
      return true;
    }
    if (res.status === 404) {
      await res.body?.cancel();
      return false;
    }
    throw new Error(`${what}: HTTP ${res.status}: ${await libpodError(res)}`);
  }
}
