/**
 * The libpod client against a fake libpod on a Unix socket that replays the responses recorded
 * from podman 4.3.1 (`../shared/vectors/libpod/`, README there).
 */
import assert from "node:assert/strict";
import { LibpodClient, ndjsonLines, parsePullLine, type PullEvent } from "../../lib/podman/mod.ts";
import { VECTORS } from "../helpers/paths.ts";

const LIBPOD = `${VECTORS}/libpod`;
const R = "127.0.0.1:5000/rig";

/** A recorded answer: status, headers (minus framing and per-run ones) and body file. */
async function loadSample(
  name: string,
  bodyExt: string,
): Promise<{ status: number; headers: Headers; body: Uint8Array<ArrayBuffer> }> {
  const head = (await Deno.readTextFile(`${LIBPOD}/${name}.headers`)).split("\r\n");
  const status = Number(head[0].split(" ")[1]);
  const headers = new Headers();
  for (const line of head.slice(1)) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const key = line.slice(0, colon).toLowerCase();
    if (["content-length", "transfer-encoding", "date"].includes(key)) continue;
    headers.set(key, line.slice(colon + 1).trim());
  }
  const body = bodyExt === "" ? new Uint8Array() : await Deno.readFile(`${LIBPOD}/${name}.${bodyExt}`);
  return { status, headers, body };
}

/** Replays `body` line by line with a pause between lines, as podman streams a pull. */
function lineStream(body: Uint8Array, pauseMs: number, sent: number[]): ReadableStream<Uint8Array> {
  const lines = new TextDecoder().decode(body).split(/(?<=\n)/);
  let i = 0;
  return new ReadableStream({
    async pull(c) {
      if (i >= lines.length) return c.close();
      if (i > 0) await new Promise((r) => setTimeout(r, pauseMs));
      c.enqueue(new TextEncoder().encode(lines[i++]));
      sent.push(performance.now());
    },
  });
}

interface FakeLibpod extends AsyncDisposable {
  socket: string;
  /** URLs requested, in order. */
  requests: { method: string; url: URL; headers: Headers }[];
  /** The sample (name, body extension) the next request gets. */
  next(name: string, bodyExt: string, opts?: { pauseMs?: number }): void;
  /** Times at which the lines of the last streamed reply were handed to the server. */
  sent: number[];
}

async function fakeLibpod(): Promise<FakeLibpod> {
  const dir = await Deno.makeTempDir({ prefix: "fake-libpod-" });
  const socket = `${dir}/podman.sock`;
  let queued: { name: string; bodyExt: string; pauseMs: number } | undefined;
  const requests: FakeLibpod["requests"] = [];
  const sent: number[] = [];
  const server = Deno.serve({ path: socket, onListen: () => {} }, async (req) => {
    requests.push({ method: req.method, url: new URL(req.url), headers: req.headers });
    if (!queued) return new Response("no sample queued", { status: 599 });
    const { name, bodyExt, pauseMs } = queued;
    queued = undefined;
    const s = await loadSample(name, bodyExt);
    sent.length = 0;
    const body = s.status === 204 ? null : bodyExt === "ndjson" ? lineStream(s.body, pauseMs, sent) : s.body;
    return new Response(body, { status: s.status, headers: s.headers });
  });
  return {
    socket,
    requests,
    sent,
    next(name, bodyExt, opts = {}) {
      queued = { name, bodyExt, pauseMs: opts.pauseMs ?? 0 };
    },
    async [Symbol.asyncDispose]() {
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("ping: API versions from the recorded headers", async () => {
  await using fake = await fakeLibpod();
  const client = new LibpodClient(fake.socket);
  fake.next("00-ping", "txt");
  assert.deepEqual(await client.ping(), { libpodApiVersion: "4.3.1", apiVersion: "1.41" });
  assert.equal(fake.requests[0].url.pathname, "/_ping");
  client.close();
});

Deno.test("pull: request parameters, progress events in stream order, final image id", async () => {
  await using fake = await fakeLibpod();
  const client = new LibpodClient(fake.socket);
  fake.next("10-pull-layered-fresh", "ndjson", { pauseMs: 20 });
  const events: { event: PullEvent; at: number }[] = [];
  const result = await client.pull(`${R}/layered:1`, {
    tlsVerify: false,
    onProgress: (event) => events.push({ event, at: performance.now() }),
  });
  const q = fake.requests[0].url.searchParams;
  assert.equal(fake.requests[0].method, "POST");
  assert.equal(fake.requests[0].url.pathname, "/v4.0.0/libpod/images/pull");
  assert.equal(q.get("reference"), `${R}/layered:1`);
  assert.equal(q.get("tlsVerify"), "false");
  assert.equal(q.get("policy"), "always");
  const id = "a254fc7f080523ca3b3646413d4c923028f140e8ae34290ce47ec04233f31bd2";
  assert.deepEqual(result, { id, images: [id] });
  // Completion order as recorded (README: 3fdba235, 8d706649, 8a386811, c5a66fca), not manifest order.
  const blobs = events.flatMap(({ event: e }) => (e.kind === "blob" ? [e.digest.slice(7, 15)] : []));
  assert.deepEqual(blobs, ["3fdba235", "8d706649", "8a386811", "c5a66fca"]);
  assert.ok(events.every(({ event: e }) => e.kind !== "blob" || (e.status === "copying" && e.current === undefined)));
  assert.deepEqual(events.find(({ event: e }) => e.kind === "config")?.event, {
    kind: "config",
    digest: `sha256:${id}`,
  });
  assert.deepEqual(events[0].event, { kind: "message", text: `Trying to pull ${R}/layered:1...` });
  // Streaming, not buffering: the first event arrived before podman had sent the last line.
  assert.ok(events[0].at < fake.sent.at(-1)!, "first event was delivered only after the whole reply");
  client.close();
});

Deno.test("pull: every recorded libpod pull reply gives its id or its in-band error", async () => {
  await using fake = await fakeLibpod();
  const client = new LibpodClient(fake.socket);
  const names = [];
  for await (const e of Deno.readDir(LIBPOD)) {
    if (/^(1\d|2\d|3\d|83)-.*\.ndjson$/.test(e.name)) names.push(e.name.replace(/\.ndjson$/, ""));
  }
  names.sort();
  assert.ok(names.length >= 20, `only ${names.length} pull samples found`);
  for (const name of names) {
    const lines = (await Deno.readTextFile(`${LIBPOD}/${name}.ndjson`)).trim().split("\n");
    const last = JSON.parse(lines.at(-1)!);
    fake.next(name, "ndjson");
    const pull = client.pull("ref-for-" + name, { tlsVerify: false });
    if (last.error) {
      await assert.rejects(pull, { message: `podman pull ref-for-${name}: ${last.error}` }, name);
    } else {
      assert.equal((await pull).id, last.id, name);
    }
  }
  client.close();
});

Deno.test("pull: parameter errors are HTTP errors with the libpod message", async () => {
  await using fake = await fakeLibpod();
  const client = new LibpodClient(fake.socket);
  fake.next("36-err-no-reference", "json");
  await assert.rejects(client.pull(""), { message: "podman pull : HTTP 500: reference parameter cannot be empty" });
  fake.next("37-err-bad-policy", "json");
  await assert.rejects(client.pull(`${R}/base:1`, { policy: "never" }), {
    message: `podman pull ${R}/base:1: HTTP 400: unsupported pull policy "bogus"`,
  });
  client.close();
});

Deno.test("pull: a reply that ends without a result is an error", async () => {
  await using fake = await fakeLibpod();
  const client = new LibpodClient(fake.socket);
  const dir = await Deno.makeTempDir();
  // Only the first lines of a real pull: what a client sees when the service dies half-way.
  const lines = (await Deno.readTextFile(`${LIBPOD}/10-pull-layered-fresh.ndjson`)).split("\n").slice(0, 3);
  const server = Deno.serve(
    { path: `${dir}/s.sock`, onListen: () => {} },
    () => new Response(lines.join("\n") + "\n"),
  );
  const c2 = new LibpodClient(`${dir}/s.sock`);
  await assert.rejects(c2.pull(`${R}/layered:1`), {
    message: `podman pull ${R}/layered:1: the podman service ended the reply without a result (did it exit?)`,
  });
  c2.close();
  await server.shutdown();
  await Deno.remove(dir, { recursive: true });
  client.close();
});

Deno.test("pull: a missing socket is reported with its path", async () => {
  const client = new LibpodClient("/nonexistent/podman.sock");
  await assert.rejects(client.pull("x"), {
    message: "podman pull x: cannot talk to the podman service at /nonexistent/podman.sock",
  });
  client.close();
});

Deno.test("inspect: fields of the recorded layered image; 404 is an error naming the image", async () => {
  await using fake = await fakeLibpod();
  const client = new LibpodClient(fake.socket);
  fake.next("40-inspect-layered", "json");
  const img = await client.inspect(`${R}/layered:1`);
  assert.equal(fake.requests[0].url.pathname, `/v4.0.0/libpod/images/${encodeURIComponent(`${R}/layered:1`)}/json`);
  assert.equal(img.id, "a254fc7f080523ca3b3646413d4c923028f140e8ae34290ce47ec04233f31bd2");
  assert.equal(img.digest, "sha256:dd663a1e270b16d8eb35221d0b3f0f0bd5ff2e3d95834390f69d12b4422ef474");
  assert.equal(img.layers.length, 4);
  assert.equal(img.layers[0], "sha256:dfc92dde43567fab298d7bc624701209e078796cb691ff72e9f291ce9ba26bbb");
  assert.deepEqual(img.repoTags, [`${R}/layered:1`]);
  assert.equal(img.graphDriver.name, "overlay");
  assert.equal(img.labels["org.opencontainers.image.title"], "rig-layered");
  fake.next("45-inspect-missing", "json");
  await assert.rejects(client.inspect(`${R}/nope:1`), {
    message: `inspecting image ${R}/nope:1: failed to find image ${R}/nope:1: ${R}/nope:1: image not known`,
  });
  client.close();
});

Deno.test("exists: 204 and 404", async () => {
  await using fake = await fakeLibpod();
  const client = new LibpodClient(fake.socket);
  fake.next("50-exists-yes", "");
  assert.equal(await client.exists(`${R}/layered:1`), true);
  fake.next("51-exists-no", "json");
  assert.equal(await client.exists(`${R}/nope:1`), false);
  client.close();
});

Deno.test("parsePullLine: podman >= 5.9 pullProgress lines carry bytes; compat error lines", () => {
  assert.deepEqual(
    parsePullLine(
      '{"pullProgress":{"status":"pulling","current":1024,"total":4096,"progressComponentID":"sha256:abc"}}',
    ),
    { type: "event", event: { kind: "blob", digest: "sha256:abc", status: "pulling", current: 1024, total: 4096 } },
  );
  assert.deepEqual(
    parsePullLine('{"pullProgress":{"status":"success","current":4096,"total":-1,"progressComponentID":"sha256:abc"}}'),
    { type: "event", event: { kind: "blob", digest: "sha256:abc", status: "done", current: 4096, total: undefined } },
  );
  assert.deepEqual(parsePullLine('{"pullProgress":{"status":"pulling","progressComponentID":""}}'), {
    type: "ignored",
  });
  assert.deepEqual(parsePullLine('{"progressDetail":{},"errorDetail":{"message":"boom"},"error":"boom"}'), {
    type: "error",
    message: "boom",
  });
  assert.throws(() => parsePullLine("not json"), /podman sent a line that is not JSON: not json/);
});

Deno.test("ndjsonLines: lines split across chunks, blank lines, missing final newline", async () => {
  const parts = ['{"a":', '1}\n\n{"b"', ':2}\n{"c":3}'];
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      for (const p of parts) c.enqueue(new TextEncoder().encode(p));
      c.close();
    },
  });
  const out = [];
  for await (const l of ndjsonLines(stream)) out.push(l);
  assert.deepEqual(out, ['{"a":1}', '{"b":2}', '{"c":3}']);
});
