/**
 * A scriptable fake OCI registry for unit tests, served by `Deno.serve` on 127.0.0.1: manifests
 * and blobs per repository, Basic or Bearer auth (its own `/token` endpoint), `Range` requests,
 * and injected faults (an HTTP status, a connection cut after N body bytes, a body that stalls
 * after N bytes with the connection left open, or headers sent only after a delay).
 *
 * ```ts
 * await using reg = fakeRegistry({ auth: { scheme: "bearer", username: "u", password: "p" } });
 * const blob = reg.addBlob("rig/x", new TextEncoder().encode("hello"));
 * reg.faults.push({ path: `/v2/rig/x/blobs/${blob.digest}`, status: 503 });
 * ```
 *
 * @module
 */
import { createHash } from "node:crypto";

/** A fault applied to the next request whose path matches (each fault is used once). */
export interface Fault {
  /** Exact request path, e.g. `/v2/rig/x/blobs/sha256:…`. */
  path: string;
  /** Answer with this status and an error body. */
  status?: number;
  /** Send the real headers but cut the connection after this many body bytes. */
  cutAfter?: number;
  /** Send the real headers and this many body bytes, then nothing more, keeping the connection open. */
  stallAfter?: number;
  /** Answer only after this many ms (a registry that accepted the connection but hangs). */
  delayMs?: number;
}

/** Auth the fake demands. */
export interface FakeAuth {
  scheme: "basic" | "bearer";
  username: string;
  password: string;
}

/** A request the fake saw. */
export interface SeenRequest {
  method: string;
  path: string;
  authorization: string | null;
  range: string | null;
  accept: string | null;
}

/** The fake registry handle. */
export interface FakeRegistry extends AsyncDisposable {
  /** `127.0.0.1:<port>`. */
  readonly host: string;
  /** Every request, in order. */
  readonly requests: SeenRequest[];
  /** Pending faults; tests push to it. */
  readonly faults: Fault[];
  /** Stores a blob and returns its descriptor. */
  addBlob(repo: string, bytes: Uint8Array): { digest: string; size: number };
  /** Stores `bytes` under a digest they do not hash to (a corrupt registry). */
  addBlobAs(repo: string, digest: string, bytes: Uint8Array): void;
  /** Stores a manifest under its digest and the given tags; returns its digest. */
  addManifest(
    repo: string,
    mediaType: string,
    json: unknown,
    tags?: string[],
  ): { digest: string; size: number; bytes: Uint8Array };
  /** When false, blob `Range` requests get a full 200 answer. */
  rangeSupport: boolean;
  /** Override the `Docker-Content-Digest` header of manifests (to test the client's check). */
  digestHeaderOverride?: string;
}

const sha256 = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

function errorResponse(status: number, code: string, message: string, headers: HeadersInit = {}): Response {
  return Response.json({ errors: [{ code, message, detail: null }] }, { status, headers });
}

/**
 * A body that yields `bytes` up to `cutAfter` and then ends although `Content-Length` promised
 * more: the server has to drop the connection, which the client sees as a broken transfer.
 */
function cutBody(bytes: Uint8Array, cutAfter: number): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(c) {
      if (cutAfter > 0) c.enqueue(bytes.slice(0, cutAfter));
      c.close();
    },
  });
}

/**
 * A body that yields `bytes` up to `stallAfter` and then neither ends nor errors until the client
 * goes away (Deno cancels the body) or the fake is disposed (`release`).
 */
function stalledBody(bytes: Uint8Array, stallAfter: number, stalled: Set<() => void>): ReadableStream<Uint8Array> {
  let release = () => {};
  return new ReadableStream({
    start(c) {
      if (stallAfter > 0) c.enqueue(bytes.slice(0, stallAfter));
      release = () => c.close();
      stalled.add(release);
    },
    cancel() {
      stalled.delete(release);
    },
  });
}

/** Starts a fake registry. */
export function fakeRegistry(options: { auth?: FakeAuth } = {}): FakeRegistry {
  const manifests = new Map<string, { bytes: Uint8Array; mediaType: string; digest: string }>();
  const blobs = new Map<string, Uint8Array>();
  const requests: SeenRequest[] = [];
  const faults: Fault[] = [];
  const tokens = new Set<string>();
  const stalled = new Set<() => void>();
  const delays = new Set<() => void>();
  const auth = options.auth;
  let port = 0;

  const authorized = (req: Request): boolean => {
    if (!auth) return true;
    const h = req.headers.get("authorization") ?? "";
    if (auth.scheme === "basic") return h === `Basic ${btoa(`${auth.username}:${auth.password}`)}`;
    return h.startsWith("Bearer ") && tokens.has(h.slice(7));
  };

  const handler = async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    requests.push({
      method: req.method,
      path: url.pathname,
      authorization: req.headers.get("authorization"),
      range: req.headers.get("range"),
      accept: req.headers.get("accept"),
    });
    if (url.pathname === "/token") {
      if (req.headers.get("authorization") !== `Basic ${btoa(`${auth?.username}:${auth?.password}`)}`) {
        return Response.json({ details: "incorrect username or password" }, { status: 401 });
      }
      const token = crypto.randomUUID();
      tokens.add(token);
      return Response.json({ token, expires_in: 300 });
    }
    if (!authorized(req)) {
      const challenge = auth!.scheme === "basic"
        ? 'Basic realm="fake"'
        : `Bearer realm="http://127.0.0.1:${port}/token",service="fake",scope="repository:x:pull"`;
      return errorResponse(401, "UNAUTHORIZED", "authentication required", { "www-authenticate": challenge });
    }
    const faultIndex = faults.findIndex((f) => f.path === url.pathname);
    const fault = faultIndex >= 0 ? faults.splice(faultIndex, 1)[0] : undefined;
    if (fault?.delayMs) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, fault.delayMs);
        function done() {
          clearTimeout(t);
          delays.delete(done);
          resolve();
        }
        delays.add(done);
      });
    }
    if (fault?.status) return errorResponse(fault.status, "FAULT", `injected ${fault.status}`);
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(url.pathname);
    if (!m) return errorResponse(404, "NAME_UNKNOWN", "no such route");
    const [, repo, kind, ref] = m;
    if (kind === "manifests") {
      const entry = manifests.get(`${repo}@${ref}`);
      if (!entry) return errorResponse(404, "MANIFEST_UNKNOWN", "manifest unknown");
      const headers = {
        "content-type": entry.mediaType,
        "docker-content-digest": fake.digestHeaderOverride ?? entry.digest,
      };
      if (fault?.cutAfter !== undefined) {
        const h = { ...headers, "content-length": String(entry.bytes.length) };
        return new Response(cutBody(entry.bytes, fault.cutAfter), { headers: h });
      }
      return new Response(entry.bytes.slice(), { headers });
    }
    const blob = blobs.get(`${repo}@${ref}`);
    if (!blob) return errorResponse(404, "BLOB_UNKNOWN", "blob unknown to registry");
    const range = /^bytes=(\d+)-$/.exec(req.headers.get("range") ?? "");
    const start = range && fake.rangeSupport ? Number(range[1]) : 0;
    const body = blob.slice(start);
    const headers: Record<string, string> = {
      "content-type": "application/octet-stream",
      "content-length": String(body.length),
      "docker-content-digest": ref,
    };
    const status = start > 0 ? 206 : 200;
    if (start > 0) headers["content-range"] = `bytes ${start}-${blob.length - 1}/${blob.length}`;
    if (fault?.cutAfter !== undefined) return new Response(cutBody(body, fault.cutAfter), { status, headers });
    if (fault?.stallAfter !== undefined) {
      return new Response(stalledBody(body, fault.stallAfter, stalled), { status, headers });
    }
    return new Response(body, { status, headers });
  };

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, handler);
  port = server.addr.port;
  const fake: FakeRegistry = {
    host: `127.0.0.1:${port}`,
    requests,
    faults,
    rangeSupport: true,
    addBlob(repo, bytes) {
      const digest = sha256(bytes);
      blobs.set(`${repo}@${digest}`, bytes);
      return { digest, size: bytes.length };
    },
    addBlobAs(repo, digest, bytes) {
      blobs.set(`${repo}@${digest}`, bytes);
    },
    addManifest(repo, mediaType, json, tags = []) {
      const bytes = new TextEncoder().encode(typeof json === "string" ? json : JSON.stringify(json));
      const digest = sha256(bytes);
      for (const ref of [digest, ...tags]) manifests.set(`${repo}@${ref}`, { bytes, mediaType, digest });
      return { digest, size: bytes.length, bytes };
    },
    async [Symbol.asyncDispose]() {
      for (const release of stalled) release();
      for (const done of delays) done();
      await server.shutdown();
    },
  };
  return fake;
}
