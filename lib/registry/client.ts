/**
 * OCI distribution API v2 client: manifests by tag or digest, index resolution by platform, blobs
 * streamed and verified, anonymous/Basic/Bearer auth, retries with backoff and `Range` resume.
 *
 * @module
 */
import { hostPlatform, parseManifest, type Platform, selectPlatform } from "../oci/manifest.ts";
import { isManifestType, MediaType } from "../oci/mediatype.ts";
import { type DockerReference, formatDockerReference, parseDockerReference } from "../oci/reference.ts";
import type { BlobRef, ManifestBlob } from "../oci/source.ts";
import { VERSION } from "../version.ts";
import {
  type AuthEnv,
  basicAuthorization,
  type Credentials,
  findCredentials,
  parseChallenge,
  processAuthEnv,
} from "./auth.ts";
import { backoffDelay, DEFAULT_RETRY, type RetryPolicy, sleep } from "./concurrency.ts";
import { BlobVerifier, type Digest, digestAlgorithm, digestOf, parseDigest } from "../oci/digest.ts";
import { isInsecure, loadRegistriesConf } from "./registries_conf.ts";

/** Every manifest media type the client asks for, in the `Accept` header. */
const ACCEPTED_MANIFEST_TYPES = [
  MediaType.ociManifest,
  MediaType.dockerManifest,
  MediaType.ociIndex,
  MediaType.dockerManifestList,
].join(", ");

/** The host to contact for a registry name: Docker Hub's API lives on `registry-1.docker.io`. */
function registryHost(domain: string): string {
  return domain === "docker.io" ? "registry-1.docker.io" : domain;
}

/**
 * Parses `docker://name` or a bare `name` (Docker Hub defaults, tag `latest` when neither tag nor
 * digest is given).
 */
export function parseRegistryReference(text: string): DockerReference {
  return parseDockerReference(text.startsWith("docker://") ? text.slice("docker://".length) : text, "latest");
}

/** Manifests larger than this are refused (containers/image uses the same limit). */
const MAX_MANIFEST_BYTES = 4 << 20;

/** How to reach and authenticate to a registry. */
export interface RegistryClientOptions {
  /** false = plain HTTP (`--tls-verify=false`). Default: false if registries.conf marks the registry insecure, else true. */
  tlsVerify?: boolean;
  /** registries.conf to read instead of the system ones (`$CONTAINERS_REGISTRIES_CONF`). */
  registriesConf?: string;
  /** `--authfile`: the only auth file consulted. */
  authFile?: string;
  /** Credentials to use instead of any auth file (`--creds`). */
  credentials?: Credentials;
  /** Environment for the auth file lookup (default: this process's). */
  authEnv?: AuthEnv;
  /** Retry policy for 5xx answers and broken connections. */
  retry?: Partial<RetryPolicy>;
  /** Stall limits: a request or a body that makes no progress for this long is cut and retried. */
  timeouts?: Partial<StallTimeouts>;
  /** Extra CA certificates (PEM) for HTTPS. */
  caCerts?: string[];
  /** Cancels every request of this client. */
  signal?: AbortSignal;
}

/**
 * How long the client waits for a registry that stops making progress. Without these limits a
 * peer that accepts a connection but never answers, or stops sending mid-body without closing it,
 * leaves a read pending forever.
 */
/** A {@link RegistryClient} as plain data ({@link RegistryClient.access}). */
export interface RegistryAccess {
  reference: DockerReference;
  scheme: "http" | "https";
  credentials?: Credentials;
  authorization?: string;
  retry: RetryPolicy;
  timeouts: StallTimeouts;
  caCerts?: string[];
}

export interface StallTimeouts {
  /** From sending a request to having the response headers, in ms (covers the connect; default 30 000). */
  headersMs: number;
  /** Longest pause between two chunks of a body, in ms (default 60 000). */
  idleMs: number;
}

/** Default {@link StallTimeouts}. */
export const DEFAULT_TIMEOUTS: StallTimeouts = { headersMs: 30_000, idleMs: 60_000 };

/** A request or body that made no progress within its limit (retried like a broken connection). */
export class StallError extends Error {
  constructor(what: string, ms: number) {
    super(`${what}: nothing received for ${ms / 1000} s`);
    this.name = "StallError";
  }
}

/** One request's abort handle: the client's signal combined with a stall abort of its own. */
class Attempt {
  readonly #controller = new AbortController();
  readonly signal: AbortSignal;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(outer: AbortSignal | undefined) {
    this.signal = outer ? AbortSignal.any([outer, this.#controller.signal]) : this.#controller.signal;
  }

  /** (Re)arms the stall timer: after `ms` without another call or {@link disarm}, the request is aborted. */
  arm(ms: number, what: string): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#controller.abort(new StallError(what, ms)), ms);
  }

  disarm(): void {
    clearTimeout(this.#timer);
  }

  /** The stall that aborted this attempt, if any. */
  get stall(): StallError | undefined {
    const r = this.#controller.signal.reason;
    return r instanceof StallError ? r : undefined;
  }
}

/** Reads one chunk, aborting the attempt (which errors the read) if nothing arrives within `ms`. */
async function readWithin(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  attempt: Attempt,
  ms: number,
  what: string,
): Promise<ReadableStreamReadResult<Uint8Array>> {
  attempt.arm(ms, what);
  try {
    return await reader.read();
  } catch (e) {
    throw attempt.stall ?? e;
  } finally {
    attempt.disarm();
  }
}

/** HTTP status codes worth another try. */
function isTransientStatus(status: number): boolean {
  return status === 429 || status === 500 || status === 502 || status === 503 || status === 504;
}

/** The first `{"errors":[{code,message}]}` entry of a distribution API error body, as text. */
async function errorDetail(res: Response): Promise<string> {
  const text = await res.text().catch(() => "");
  try {
    const e = (JSON.parse(text) as { errors?: { code?: string; message?: string }[] }).errors?.[0];
    if (e) return [e.code, e.message].filter((x) => x).join(": ");
  } catch {
    // Not JSON; fall through to the raw text.
  }
  return text.trim().slice(0, 200);
}

/**
 * A client for one repository of one registry. Create it with {@link RegistryClient.open}, which
 * settles plain HTTP vs HTTPS and credentials once.
 *
 * @example
 * ```ts
 * const client = await RegistryClient.open("127.0.0.1:5000/rig/base:1", { tlsVerify: false });
 * const { manifest } = await client.resolveManifest();
 * const layers = JSON.parse(new TextDecoder().decode(manifest.bytes)).layers;
 * for await (const chunk of await client.getBlob(layers[0])) consume(chunk);
 * client.close();
 * ```
 */
export class RegistryClient {
  /** The reference this client was opened for. */
  readonly reference: DockerReference;
  /** `http` or `https`. */
  readonly scheme: "http" | "https";
  #credentials: Credentials | undefined;
  #retry: RetryPolicy;
  #timeouts: StallTimeouts;
  #signal: AbortSignal | undefined;
  #http: Deno.HttpClient | undefined;
  #caCerts: string[] | undefined;
  #authorization: string | undefined;

  private constructor(
    reference: DockerReference,
    scheme: "http" | "https",
    credentials: Credentials | undefined,
    options: RegistryClientOptions,
  ) {
    this.reference = reference;
    this.scheme = scheme;
    this.#credentials = credentials;
    this.#retry = { ...DEFAULT_RETRY, ...options.retry };
    this.#timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
    this.#signal = options.signal;
    if (options.caCerts?.length) {
      this.#caCerts = options.caCerts;
      this.#http = Deno.createHttpClient({ caCerts: options.caCerts });
    }
  }

  /** Opens a client for `reference` (text or parsed), looking up insecure registries and credentials. */
  static async open(reference: string | DockerReference, options: RegistryClientOptions = {}): Promise<RegistryClient> {
    const ref = typeof reference === "string" ? parseRegistryReference(reference) : reference;
    const tlsVerify = options.tlsVerify ??
      !isInsecure(await loadRegistriesConf(options.registriesConf), ref.domain, ref.path);
    const creds = options.credentials ??
      await findCredentials(ref.domain, ref.path, options.authEnv ?? processAuthEnv(), options.authFile);
    return new RegistryClient(ref, tlsVerify ? "https" : "http", creds, options);
  }

  /**
   * What a client on another thread needs to fetch from the registry as this one does: plain data,
   * for `postMessage`, with the authorization obtained so far (the other client authenticates
   * again by itself if the registry asks).
   */
  access(): RegistryAccess {
    return {
      reference: { ...this.reference },
      scheme: this.scheme,
      credentials: this.#credentials && { ...this.#credentials },
      authorization: this.#authorization,
      retry: { ...this.#retry },
      timeouts: { ...this.#timeouts },
      caCerts: this.#caCerts,
    };
  }

  /** A client made from another's {@link access}, with its own connections. */
  static fromAccess(access: RegistryAccess, signal?: AbortSignal): RegistryClient {
    const { reference, scheme, credentials, retry, timeouts, caCerts } = access;
    const client = new RegistryClient(reference, scheme, credentials, { retry, timeouts, caCerts, signal });
    client.#authorization = access.authorization;
    return client;
  }

  /** Releases the HTTP client (only needed with `caCerts`). */
  close(): void {
    this.#http?.close();
  }

  /** `registry/repository`, for messages. */
  get #name(): string {
    return `${this.reference.domain}/${this.reference.path}`;
  }

  #url(path: string): string {
    return `${this.scheme}://${registryHost(this.reference.domain)}/v2/${this.reference.path}/${path}`;
  }

  /**
   * Fetches the manifest named by `tagOrDigest` (default: the reference's digest, else its tag).
   * Checks the bytes against the digest (the requested one, else `Docker-Content-Digest`) and
   * `expected.size` if given.
   */
  async getManifest(tagOrDigest?: string, expected?: { size: number }): Promise<ManifestBlob> {
    const which = tagOrDigest ?? this.reference.digest ?? this.reference.tag ?? "latest";
    const what = which.includes(":") ? `${this.#name}@${which}` : `${this.#name}:${which}`;
    const pinned = which.includes(":") ? parseDigest(which) : undefined;
    const { res, bytes } = await this.#manifestBytes(which, what);
    if (bytes.length > MAX_MANIFEST_BYTES) throw new Error(`${what}: manifest larger than ${MAX_MANIFEST_BYTES} bytes`);
    if (expected && bytes.length !== expected.size) {
      throw new Error(`${what}: manifest size mismatch: got ${bytes.length} bytes, expected ${expected.size}`);
    }
    const headerDigest = res.headers.get("docker-content-digest");
    const claimed = pinned ?? (headerDigest ? parseDigest(headerDigest) : undefined);
    const digest = digestOf(bytes, claimed ? digestAlgorithm(claimed) : "sha256");
    if (claimed && digest !== claimed) throw new Error(`${what}: manifest digest mismatch: got ${digest}`);
    const header = res.headers.get("content-type")?.split(";")[0].trim();
    // Some registries answer with a generic type; the JSON's own mediaType (or shape) decides then.
    const hint = header && header !== "application/json" && header !== "text/plain" ? header : undefined;
    let mediaType: string;
    try {
      mediaType = parseManifest(bytes, hint).mediaType;
    } catch (e) {
      throw new Error(`${what}: ${(e as Error).message}`);
    }
    return { bytes, digest, mediaType };
  }

  /** GET of a manifest, read whole; a connection that breaks while the body arrives is retried like a 5xx. */
  async #manifestBytes(which: string, what: string): Promise<{ res: Response; bytes: Uint8Array }> {
    for (let tries = 1;; tries++) {
      const { res, attempt } = await this.#request(
        this.#url(`manifests/${which}`),
        { accept: ACCEPTED_MANIFEST_TYPES },
        what,
        "manifest",
      );
      const length = Number(res.headers.get("content-length") ?? "0");
      if (length > MAX_MANIFEST_BYTES) {
        await res.body?.cancel();
        throw new Error(`${what}: manifest of ${length} bytes is larger than the ${MAX_MANIFEST_BYTES}-byte limit`);
      }
      // A manifest is small: the idle limit bounds the whole body.
      attempt.arm(this.#timeouts.idleMs, `${what}: manifest body`);
      try {
        return { res, bytes: new Uint8Array(await res.arrayBuffer()) };
      } catch (e) {
        if (this.#signal?.aborted) throw e;
        if (tries >= this.#retry.attempts) {
          throw new Error(`${what}: connection lost while reading the manifest`, { cause: attempt.stall ?? e });
        }
        await sleep(backoffDelay(this.#retry, tries), this.#signal);
      } finally {
        attempt.disarm();
      }
    }
  }

  /**
   * Fetches the reference's manifest and, if it is an index, the entry for `platform` (default:
   * this machine's). `index` is set when an index was resolved.
   */
  async resolveManifest(
    platform: Platform = hostPlatform(),
  ): Promise<{ manifest: ManifestBlob; index?: ManifestBlob }> {
    const top = await this.getManifest();
    const parsed = parseManifest(top.bytes, top.mediaType);
    if (parsed.kind === "manifest") return { manifest: top };
    let entry;
    try {
      entry = selectPlatform(parsed, platform);
    } catch (e) {
      throw new Error(`${formatDockerReference(this.reference)}: ${(e as Error).message}`);
    }
    const manifest = await this.getManifest(entry.digest, { size: entry.size });
    if (!isManifestType(manifest.mediaType)) {
      throw new Error(`${this.#name}@${entry.digest}: index entry is a ${manifest.mediaType}, not an image manifest`);
    }
    return { manifest, index: top };
  }

  /**
   * Streams a blob. The stream errors if the bytes do not match the descriptor's digest and size
   * (checked while streaming: an over-long blob fails at once, a digest mismatch at the end). A
   * broken connection, or one that stalls for the idle timeout, is resumed with `Range` (or
   * restarted and the known prefix skipped).
   */
  async getBlob(descriptor: BlobRef): Promise<ReadableStream<Uint8Array>> {
    const digest = parseDigest(descriptor.digest);
    const what = `${this.#name}: blob ${digest}`;
    const verifier = new BlobVerifier(digest, descriptor.size, `blob ${digest}`);
    let body = await this.#blobBody(digest, what, 0);
    let reader = body.stream.getReader();
    let failures = 0;
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        for (;;) {
          let chunk: ReadableStreamReadResult<Uint8Array>;
          try {
            chunk = await readWithin(reader, body.attempt, this.#timeouts.idleMs, `${what}: body`);
          } catch (e) {
            const how = e instanceof StallError
              ? `stalled (nothing received for ${this.#timeouts.idleMs / 1000} s)`
              : "connection lost";
            const lost = (cause: unknown) =>
              new Error(`${what}: ${how} after ${verifier.received} of ${descriptor.size} bytes`, { cause });
            if (this.#signal?.aborted || ++failures >= this.#retry.attempts) throw lost(e);
            await sleep(backoffDelay(this.#retry, failures), this.#signal);
            reader.cancel().catch(() => {});
            try {
              body = await this.#blobBody(digest, what, verifier.received);
              reader = body.stream.getReader();
            } catch (resumeError) {
              throw lost(resumeError);
            }
            continue;
          }
          if (chunk.done) {
            verifier.finish();
            controller.close();
            return;
          }
          if (chunk.value.length === 0) continue;
          failures = 0;
          verifier.update(chunk.value);
          controller.enqueue(chunk.value);
          return;
        }
      },
      cancel: (reason) => reader.cancel(reason),
    }, { highWaterMark: 0 });
  }

  /** Reads a small blob (a config) whole, verified. */
  async getBlobBytes(descriptor: BlobRef): Promise<Uint8Array> {
    return new Uint8Array(await new Response(await this.getBlob(descriptor)).arrayBuffer());
  }

  /** The body of a blob from byte `offset` on; a 200 answer to a `Range` request has its prefix dropped. */
  async #blobBody(
    digest: Digest,
    what: string,
    offset: number,
  ): Promise<{ stream: ReadableStream<Uint8Array>; attempt: Attempt }> {
    const headers: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-` } : {};
    const { res, attempt } = await this.#request(this.#url(`blobs/${digest}`), headers, what, "blob");
    if (!res.body) throw new Error(`${what}: empty response`);
    if (offset === 0 || res.status === 200) {
      return { stream: offset === 0 ? res.body : res.body.pipeThrough(skipBytes(offset)), attempt };
    }
    const range = /^bytes (\d+)-/.exec(res.headers.get("content-range") ?? "");
    if (res.status !== 206 || !range || Number(range[1]) !== offset) {
      await res.body.cancel();
      throw new Error(`${what}: resuming at byte ${offset} got an unusable answer (HTTP ${res.status})`);
    }
    return { stream: res.body, attempt };
  }

  /**
   * One GET with auth and retries. 401 triggers one authentication round (token or Basic); 5xx,
   * 429, network errors and answers slower than the headers timeout are retried with backoff;
   * other non-2xx answers become one-line errors. The returned attempt aborts the body (stall timer).
   */
  async #request(
    url: string,
    headers: Record<string, string>,
    what: string,
    kind: "manifest" | "blob",
  ): Promise<{ res: Response; attempt: Attempt }> {
    let authRounds = 0;
    for (let tries = 1;; tries++) {
      const attempt = new Attempt(this.#signal);
      const h = new Headers({ ...headers, "user-agent": `bootcfs/${VERSION}` });
      if (this.#authorization) h.set("authorization", this.#authorization);
      let res: Response;
      attempt.arm(this.#timeouts.headersMs, `${what}: request`);
      try {
        res = await fetch(url, { headers: h, signal: attempt.signal, client: this.#http });
      } catch (e) {
        if (this.#signal?.aborted) throw e;
        if (tries >= this.#retry.attempts) {
          const host = `${this.scheme}://${registryHost(this.reference.domain)}`;
          const stall = attempt.stall;
          const message = stall
            ? `${what}: ${host} did not answer within ${this.#timeouts.headersMs / 1000} s`
            : `${what}: cannot reach ${host}`;
          throw new Error(message, { cause: stall ?? e });
        }
        await sleep(backoffDelay(this.#retry, tries), this.#signal);
        continue;
      } finally {
        attempt.disarm();
      }
      if (res.ok) return { res, attempt };
      if (isTransientStatus(res.status) && tries < this.#retry.attempts) {
        await res.body?.cancel();
        await sleep(backoffDelay(this.#retry, tries), this.#signal);
        continue;
      }
      if (res.status === 401 && authRounds < 2) {
        const challenge = res.headers.get("www-authenticate");
        await res.body?.cancel();
        // A second round is allowed only for an expired token: Basic credentials do not change.
        const renewed = challenge !== null && await this.#authenticate(challenge, what, authRounds);
        authRounds++;
        if (renewed) {
          tries--;
          continue;
        }
        throw this.#authError(what);
      }
      const detail = await errorDetail(res);
      const suffix = detail ? ` (HTTP ${res.status}: ${detail})` : ` (HTTP ${res.status})`;
      if (res.status === 401) throw this.#authError(what);
      if (res.status === 403) throw new Error(`${what}: access denied${suffix}`);
      if (res.status === 404) {
        throw new Error(`${what}: ${kind === "manifest" ? "manifest unknown" : "blob not found"}${suffix}`);
      }
      throw new Error(`${what}: registry answered${suffix}`);
    }
  }

  #authError(what: string): Error {
    return this.#credentials
      ? new Error(`${what}: the registry rejected the credentials for ${this.reference.domain} (HTTP 401)`)
      : new Error(`${what}: authentication required (HTTP 401); log in or pass an auth file`);
  }

  /** Answers a challenge; false if there is nothing new to try. */
  async #authenticate(header: string, what: string, round: number): Promise<boolean> {
    const challenge = parseChallenge(header);
    if (!challenge) return false;
    if (challenge.scheme === "basic") {
      if (!this.#credentials || round > 0) return false;
      this.#authorization = basicAuthorization(this.#credentials);
      return true;
    }
    const realm = challenge.params.realm;
    if (!realm) throw new Error(`${what}: bearer challenge without a realm: ${header}`);
    const url = new URL(realm);
    if (challenge.params.service) url.searchParams.set("service", challenge.params.service);
    url.searchParams.set("scope", challenge.params.scope ?? `repository:${this.reference.path}:pull`);
    const headers = new Headers({ "user-agent": `bootcfs/${VERSION}` });
    if (this.#credentials) headers.set("authorization", basicAuthorization(this.#credentials));
    let res: Response;
    try {
      const timeout = AbortSignal.timeout(this.#timeouts.headersMs);
      const signal = this.#signal ? AbortSignal.any([this.#signal, timeout]) : timeout;
      res = await fetch(url, { headers, signal, client: this.#http });
    } catch (e) {
      throw new Error(`${what}: cannot reach the token server ${url.origin}`, { cause: e });
    }
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel();
      if (this.#credentials) {
        throw new Error(`${what}: the token server ${url.host} rejected the credentials (HTTP ${res.status})`);
      }
      throw new Error(`${what}: the token server ${url.host} refused anonymous access (HTTP ${res.status})`);
    }
    if (!res.ok) {
      throw new Error(`${what}: token server ${url.host} answered HTTP ${res.status}: ${await errorDetail(res)}`);
    }
    const body = await res.json() as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token) throw new Error(`${what}: token server ${url.host} returned no token`);
    this.#authorization = `Bearer ${token}`;
    return true;
  }
}

/** Drops the first `count` bytes of a stream (a restarted download whose start was already verified). */
function skipBytes(count: number): TransformStream<Uint8Array, Uint8Array> {
  let left = count;
  return new TransformStream({
    transform(chunk, controller) {
      if (left >= chunk.length) {
        left -= chunk.length;
        return;
      }
      controller.enqueue(left > 0 ? chunk.subarray(left) : chunk);
      left = 0;
    },
  });
}
