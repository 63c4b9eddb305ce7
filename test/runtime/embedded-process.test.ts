import { describe, expect, it } from "vitest";
import { embeddedProcessFlags } from "../../src/runtime/embedded-process.ts";

const embedded = { databaseUrl: null, embeddedWasmOptimize: false };

describe("embeddedProcessFlags", () => {
  it("keeps PGlite on V8's baseline WebAssembly compiler and the heap at twice the live size", () => {
    expect(embeddedProcessFlags(embedded, [])).toEqual(["--liftoff-only", "--heap-growing-percent=100"]);
  });

  it("sets nothing for a process on PostgreSQL", () => {
    expect(embeddedProcessFlags({ ...embedded, databaseUrl: "postgres://db/herald" }, [])).toEqual([]);
  });

  it("leaves V8's optimising compiler on with HERALD_EMBEDDED_WASM_OPTIMIZE", () => {
    expect(embeddedProcessFlags({ ...embedded, embeddedWasmOptimize: true }, [])).toEqual([
      "--heap-growing-percent=100",
    ]);
  });

  it.each([
    [["--no-liftoff-only"], ["--heap-growing-percent=100"]],
    [["--liftoff"], ["--heap-growing-percent=100"]],
    [["--wasm-tier-up"], ["--heap-growing-percent=100"]],
    [["--heap_growing_percent=300"], ["--liftoff-only"]],
    [["--heap-growing-percent=0", "--no-liftoff-only"], []],
    [["--max-semi-space-size=4"], ["--liftoff-only", "--heap-growing-percent=100"]],
  ])("lets node's own command line %j win", (execArgv, expected) => {
    expect(embeddedProcessFlags(embedded, execArgv)).toEqual(expected);
  });
});
