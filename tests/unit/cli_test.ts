import assert from "node:assert/strict";
import type { Command, Context, LazyCommand } from "../../lib/cli/command.ts";
import { helpText, resolveCommand, runCli } from "../../lib/cli/dispatch.ts";
import { createLogger, stderrSink } from "../../lib/cli/log.ts";
import { COMMANDS } from "../../lib/commands/mod.ts";
import { formatTable, type Output } from "../../lib/cli/output.ts";
import { createProgress } from "../../lib/cli/progress.ts";
import { ContextError, errorChain, UsageError, withContext } from "../../lib/error/mod.ts";

function capture() {
  let stdout = "", stderr = "";
  const out: Output = {
    line: (t) => void (stdout += t + "\n"),
    write: (t) => void (stdout += typeof t === "string" ? t : new TextDecoder().decode(t)),
    json: (v) => void (stdout += JSON.stringify(v, null, 2) + "\n"),
    table: (h, r) => void (stdout += formatTable(h, r)),
  };
  return {
    out,
    errWrite: (s: string) => void (stderr += s),
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
  };
}

interface Seen {
  ctx: Context;
  values: Record<string, unknown>;
  positionals: string[];
}
const box: { seen: Seen | null } = { seen: null };
const initCommand: Command = {
  name: "init",
  summary: "create a repository",
  usage: "DIR",
  options: { hash: { type: "string", value: "ALG", default: "sha512", help: "hash" } },
  run(ctx, args) {
    box.seen = { ctx, values: args.values, positionals: args.positionals };
  },
};
const repoCommand: Command = { name: "repo", summary: "repository commands", subcommands: [initCommand] };
/** How often the lazy command's definition was loaded. */
const lazyLoads = { count: 0 };
const lazyCommand: LazyCommand = {
  name: "lazy",
  summary: "defined elsewhere",
  load() {
    lazyLoads.count++;
    return Promise.resolve({
      usage: "ARG",
      options: { level: { type: "string", value: "N", help: "how lazy" } },
      run(ctx, args) {
        box.seen = { ctx, values: args.values, positionals: args.positionals };
      },
    });
  },
};
const tree: Command = {
  name: "tool",
  summary: "test tool",
  subcommands: [
    repoCommand,
    {
      name: "fail",
      summary: "always fails",
      async run() {
        await withContext("pulling docker://x", () => {
          throw new ContextError("layer sha256:abc", new Error("digest mismatch"));
        });
      },
    },
    { name: "code", summary: "returns 3", run: () => 3 },
    lazyCommand,
  ],
};

async function cli(argv: string[]) {
  const c = capture();
  const code = await runCli(tree, argv, {
    version: "9.9",
    out: c.out,
    errWrite: c.errWrite,
    log: () => createLogger(stderrSink(c.errWrite), "info"),
    progress: () => createProgress("none"),
  });
  return { code, stdout: c.stdout, stderr: c.stderr };
}

Deno.test("cli: global options are accepted before and after the command names", async () => {
  box.seen = null;
  const r = await cli(["--root", "/mnt", "repo", "-v", "init", "--hash", "sha256", "--insecure", "dir", "-v"]);
  assert.equal(r.code, 0, r.stderr);
  const s = box.seen!;
  assert.deepEqual(s.positionals, ["dir"]);
  assert.equal(s.values.hash, "sha256");
  assert.equal(s.ctx.globals.root, "/mnt");
  assert.equal(s.ctx.globals.insecure, true);
  assert.equal(s.ctx.globals.verbose, 2);
  assert.equal(s.ctx.globals.progress, "auto");
});

Deno.test("cli: option defaults apply", async () => {
  box.seen = null;
  await cli(["repo", "init", "d"]);
  assert.equal(box.seen!.values.hash, "sha512");
});

Deno.test("cli: --help works on every level and exits 0", async () => {
  for (const argv of [["--help"], ["repo", "--help"], ["repo", "init", "--help"], ["-h", "repo", "init"]]) {
    const r = await cli(argv);
    assert.equal(r.code, 0, argv.join(" "));
    assert.match(r.stdout, /Usage: tool/);
    assert.match(r.stdout, /--progress MODE/);
  }
  assert.match((await cli(["repo", "--help"])).stdout, /Commands:\n {2}init {2}create a repository/);
  assert.match((await cli(["repo", "init", "--help"])).stdout, /--hash ALG {2}hash \(default: sha512\)/);
});

Deno.test("cli: a group without a command prints help to stderr and exits 2", async () => {
  const r = await cli(["repo"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /Usage: tool repo \[OPTIONS\] COMMAND/);
});

Deno.test("cli: --version", async () => {
  assert.deepEqual(await cli(["--version"]), { code: 0, stdout: "tool 9.9\n", stderr: "" });
});

Deno.test("cli: usage errors exit 2 with one line and a pointer to --help", async () => {
  for (
    const [argv, msg] of [
      [["nope"], /^error: unknown command 'nope' for 'tool'\n/],
      [["repo", "init", "--bogus"], /^error: Unknown option '--bogus'\nRun 'tool repo init --help' for usage\.\n$/],
      [["repo", "init", "--progress", "fancy", "d"], /^error: --progress must be one of auto, tty, plain, json, none/],
      [["repo", "init", "--hash"], /^error: Option '--hash <value>' argument missing/],
    ] as const
  ) {
    const r = await cli([...argv]);
    assert.equal(r.code, 2, argv.join(" "));
    assert.match(r.stderr, msg);
  }
});

Deno.test("cli: failures exit 1 with the whole context chain on one line", async () => {
  const r = await cli(["fail"]);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, "error: pulling docker://x: layer sha256:abc: digest mismatch\n");
});

Deno.test("cli: a command's own exit code is passed through", async () => {
  assert.equal((await cli(["code"])).code, 3);
});

Deno.test("cli: resolveCommand skips option values when looking for the command name", async () => {
  const { path, rest } = await resolveCommand(tree, ["--repo", "repo", "repo", "init", "x"]);
  assert.deepEqual(path.map((c) => c.name), ["tool", "repo", "init"]);
  assert.deepEqual(rest, ["--repo", "repo", "x"]);
});

Deno.test("cli: help lists global options for leaves", () => {
  const text = helpText([tree, repoCommand, initCommand]);
  assert.match(text, /^tool repo init — create a repository\n\nUsage: tool repo init \[OPTIONS\] DIR\n/);
  assert.match(text, /Global options:\n {6}--root DIR/);
});

Deno.test("cli: a lazy command is listed without loading it and loaded when selected", async () => {
  lazyLoads.count = 0;
  for (const argv of [["--help"], ["repo", "init", "--help"], ["nope"], ["--version"]]) await cli(argv);
  assert.equal(lazyLoads.count, 0, "loaded for another command's help or run");
  assert.match((await cli(["--help"])).stdout, /\n {2}lazy {2}defined elsewhere\n/);

  const help = await cli(["lazy", "--help"]);
  assert.equal(lazyLoads.count, 1);
  assert.match(help.stdout, /^tool lazy — defined elsewhere\n\nUsage: tool lazy \[OPTIONS\] ARG\n/);
  assert.match(help.stdout, /--level N {2}how lazy/);

  box.seen = null;
  const r = await cli(["-v", "lazy", "--level", "9", "x"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(lazyLoads.count, 2);
  assert.deepEqual(box.seen!.positionals, ["x"]);
  assert.equal(box.seen!.values.level, "9");
  assert.equal(box.seen!.ctx.globals.verbose, 1);
});

Deno.test("cli: every bootcfs command is lazy and loads a runnable definition", async () => {
  assert.ok(COMMANDS.length > 0);
  for (const c of COMMANDS) {
    assert.equal(typeof c.load, "function", c.name);
    const body = await c.load();
    assert.ok(body.run || body.subcommands?.length, `${c.name}: neither run nor subcommands`);
    assert.ok(!("name" in body) && !("summary" in body), `${c.name}: name and summary belong to the list`);
  }
});

Deno.test("errors: errorChain joins causes and non-Error values", () => {
  assert.equal(errorChain(new ContextError("a", new ContextError("b", "c"))), "a: b: c");
  assert.equal(errorChain(new UsageError("bad")), "bad");
  const cause = new Error("unexpected end of archive");
  assert.equal(
    errorChain(new ContextError("layer x", new Error(`reading "a": ${cause.message}`, { cause }))),
    'layer x: reading "a": unexpected end of archive',
  );
});

Deno.test("errors: a failure whose cleanup failed too names the failure first, then the cleanup", () => {
  class Failing implements Disposable {
    [Symbol.dispose]() {
      throw new Error("closing: disk full");
    }
  }
  let caught: unknown;
  try {
    using _ = new Failing();
    throw new ContextError("storing", new Error("disk full"));
  } catch (e) {
    caught = new ContextError("layer x", e);
  }
  assert.ok((caught as Error).cause instanceof SuppressedError);
  assert.equal(errorChain(caught), "layer x: storing: disk full; while cleaning up: closing: disk full");
});

Deno.test("output: tables align columns", () => {
  assert.equal(formatTable(["A", "BB"], [["xxx", "y"], ["z", "w"]]), "A    BB\nxxx  y\nz    w\n");
});

Deno.test("progress: plain mode prints start and end lines, throttles updates", () => {
  let out = "";
  let now = 0;
  const p = createProgress("plain", { write: (s) => void (out += s), clock: () => now });
  const t = p.task("blob sha256:ab", { total: 2 * 1024 * 1024 });
  now = 1000;
  t.advance(1024 * 1024);
  now = 2000;
  t.advance(1024 * 1024);
  t.done();
  assert.deepEqual(out.trim().split("\n"), [
    "blob sha256:ab  0.0/2.0 MiB  0%",
    "blob sha256:ab  2.0/2.0 MiB  100%  1.0 MiB/s  done",
  ]);
  now = 8000;
  const t2 = p.task("layer", { unit: "items" });
  now = 14000;
  t2.advance(5);
  assert.match(out, /layer {2}5\n$/);
});

Deno.test("progress: json mode emits one JSON object per line", () => {
  let out = "";
  const p = createProgress("json", { write: (s) => void (out += s), clock: () => 0 });
  const t = p.task("x", { total: 10 });
  t.done("skipped");
  const lines = out.trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(lines[0], { event: "progress.start", task: "x", unit: "bytes", done: 0, total: 10 });
  assert.deepEqual(lines[1], { event: "progress.done", task: "x", unit: "bytes", done: 0, total: 10, note: "skipped" });
});

Deno.test("progress: tty mode draws a bar per live task and redraws in place", () => {
  let out = "";
  let now = 0;
  const p = createProgress("tty", { write: (s) => void (out += s), clock: () => now, columns: 100 });
  const a = p.task("a", { total: 100 });
  const b = p.task("b", { total: 100 });
  now = 500;
  a.set(50);
  assert.ok(out.includes("\x1b[2A")); // moved up over the two drawn lines
  assert.match(out, /\[#{12}-{12}\] a {2}0\.0\/0\.0 MiB {2}50%/);
  a.done();
  b.done();
  assert.ok(out.endsWith("\x1b[J"));
});

Deno.test("progress: auto picks plain when stderr is not a terminal, none prints nothing", () => {
  let out = "";
  createProgress("auto", { write: (s) => void (out += s), isTerminal: false }).task("t").done();
  assert.match(out, /^t {2}0\.0 MiB/);
  out = "";
  createProgress("none", { write: (s) => void (out += s) }).task("t").done();
  assert.equal(out, "");
});
