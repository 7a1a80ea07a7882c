/**
 * The hashes of a task on chain: canonical JSON (sorted keys, no whitespace, refusals of what JSON cannot
 * carry), the spec hash the master puts on chain and the result hash the executor reports. Pure functions:
 * no chain, no engine.
 */
import { expect } from "chai";
import { keccak256, toUtf8Bytes } from "ethers";
import { canonicalJson, resultHash, specHash } from "../../keepers/shared/task-hash.js";
import { validateTaskSpec } from "../../keepers/miner/task-spec.js";

describe("task hashes (keepers/shared/task-hash.ts)", () => {
  describe("canonicalJson", () => {
    it("sorts object keys recursively and writes no whitespace", () => {
      const value = { b: 1, a: { d: [3, { z: true, y: null }], c: "x" } };
      expect(canonicalJson(value)).to.equal('{"a":{"c":"x","d":[3,{"y":null,"z":true}]},"b":1}');
    });

    it("gives the same text whatever the order in which keys were inserted", () => {
      const one = { image: "busybox", command: ["sh", "-c", "echo hi"], env: { B: "2", A: "1" }, cpus: 0.5 };
      const two = { cpus: 0.5, env: { A: "1", B: "2" }, command: ["sh", "-c", "echo hi"], image: "busybox" };
      expect(canonicalJson(one)).to.equal(canonicalJson(two));
    });

    it("keeps array order (it is meaningful) and sorts keys by UTF-16 code units", () => {
      expect(canonicalJson([2, 1])).to.equal("[2,1]");
      expect(canonicalJson({ b: 0, B: 0, a: 0, "é": 0, _: 0 })).to.equal('{"B":0,"_":0,"a":0,"b":0,"é":0}');
    });

    it("writes strings and numbers as JSON does (escapes, exponents, -0 as 0)", () => {
      expect(canonicalJson({ s: 'quote " backslash \\ newline \n tab \t é \u0001' })).to.equal('{"s":"quote \\" backslash \\\\ newline \\n tab \\t é \\u0001"}');
      expect(canonicalJson([1e21, 1.5, -0, 0.1])).to.equal("[1e+21,1.5,0,0.1]");
    });

    it("leaves out object fields that are undefined, as JSON does", () => {
      expect(canonicalJson({ a: 1, b: undefined })).to.equal('{"a":1}');
    });

    it("refuses what JSON cannot carry faithfully, naming where", () => {
      expect(() => canonicalJson({ a: [1, Number.NaN] })).to.throw(TypeError, "$.a[1] is NaN");
      expect(() => canonicalJson({ a: Infinity })).to.throw(TypeError, "$.a is Infinity");
      expect(() => canonicalJson({ a: -Infinity })).to.throw(TypeError, "$.a is -Infinity");
      expect(() => canonicalJson({ n: 1n })).to.throw(TypeError, "$.n is a bigint");
      expect(() => canonicalJson({ f: () => 1 })).to.throw(TypeError, "$.f is a function");
      expect(() => canonicalJson([undefined])).to.throw(TypeError, "$[0] is undefined");
      expect(() => canonicalJson({ d: new Date(0) })).to.throw(TypeError, "$.d is a Date, not a plain object");
      expect(() => canonicalJson(new Map())).to.throw(TypeError, "$ is a Map, not a plain object");
      const cycle: Record<string, unknown> = { a: 1 };
      cycle.self = { back: cycle };
      expect(() => canonicalJson(cycle)).to.throw(TypeError, "$.self.back refers back to an enclosing value");
    });

    it("accepts a value shared twice without a cycle, and objects without a prototype", () => {
      const shared = { x: 1 };
      expect(canonicalJson({ a: shared, b: shared })).to.equal('{"a":{"x":1},"b":{"x":1}}');
      const bare = Object.assign(Object.create(null) as Record<string, number>, { b: 2, a: 1 });
      expect(canonicalJson(bare)).to.equal('{"a":1,"b":2}');
    });
  });

  describe("specHash", () => {
    const spec = validateTaskSpec({
      taskId: "0123456789abcdef",
      runId: "7",
      image: "computenet/busybox:latest",
      command: ["sh", "-c", "echo 42 > /data/out.txt"],
      env: { SEED: "1", MODE: "x" },
      memoryMB: 64,
      cpus: 0.5,
    });

    it("is keccak256 of the canonical JSON of the spec without taskId and ledgerTaskId", () => {
      const { taskId: _t, ...rest } = spec;
      expect(specHash(spec)).to.equal(keccak256(toUtf8Bytes(canonicalJson(rest))));
      expect(specHash(spec)).to.match(/^0x[0-9a-f]{64}$/);
    });

    it("ignores the task ids and the order of fields, so the master and the miner agree", () => {
      const reordered = JSON.parse(JSON.stringify({ ...spec, env: { MODE: "x", SEED: "1" } })) as typeof spec;
      const asSent = { ...reordered, taskId: "another-id", ledgerTaskId: "12" };
      expect(specHash(asSent)).to.equal(specHash(spec));
      // What the miner validates from the master's body hashes as the master's stored spec.
      expect(specHash(validateTaskSpec(JSON.parse(JSON.stringify(asSent))))).to.equal(specHash(spec));
    });

    it("changes with anything that changes the work: command, image, env, limits, run", () => {
      const base = specHash(spec);
      const variants = [
        { ...spec, command: ["sh", "-c", "echo 43 > /data/out.txt"] },
        { ...spec, image: "computenet/busybox:other" },
        { ...spec, env: { ...spec.env, SEED: "2" } },
        { ...spec, memoryMB: 65 },
        { ...spec, cpus: 1 },
        { ...spec, runId: "8" },
        { ...spec, maxRestarts: 1 },
      ];
      const hashes = new Set(variants.map((v) => specHash(v)));
      expect(hashes.size).to.equal(variants.length);
      expect(hashes.has(base)).to.equal(false);
    });
  });

  describe("resultHash", () => {
    const a = { name: "a.txt", sha256: "1".repeat(64) };
    const b = { name: "dir/b.bin", sha256: "2".repeat(64) };

    it("hashes the exit code and the files sorted by name (name and sha256 only)", () => {
      const expected = keccak256(toUtf8Bytes(`{"exitCode":0,"files":[{"name":"a.txt","sha256":"${a.sha256}"},{"name":"dir/b.bin","sha256":"${b.sha256}"}]}`));
      expect(resultHash({ exitCode: 0, files: [b, a] })).to.equal(expected);
      expect(resultHash({ exitCode: 0, files: [{ ...a, size: 5 } as typeof a, b] })).to.equal(expected);
    });

    it("sorts by the whole name, not folder by folder (a.txt before a/b)", () => {
      const dotted = { name: "a.txt", sha256: "3".repeat(64) };
      const nested = { name: "a/b", sha256: "4".repeat(64) };
      expect(resultHash({ exitCode: 1, files: [nested, dotted] })).to.equal(
        keccak256(toUtf8Bytes(`{"exitCode":1,"files":[{"name":"a.txt","sha256":"${dotted.sha256}"},{"name":"a/b","sha256":"${nested.sha256}"}]}`)),
      );
    });

    it("differs for another exit code, another file content, another file name, or one file less", () => {
      const base = resultHash({ exitCode: 0, files: [a, b] });
      expect(resultHash({ exitCode: 1, files: [a, b] })).to.not.equal(base);
      expect(resultHash({ exitCode: 0, files: [a, { ...b, sha256: "5".repeat(64) }] })).to.not.equal(base);
      expect(resultHash({ exitCode: 0, files: [a, { ...b, name: "dir/c.bin" }] })).to.not.equal(base);
      expect(resultHash({ exitCode: 0, files: [a] })).to.not.equal(base);
    });

    it("takes a missing exit code as null and refuses a file listed twice", () => {
      expect(resultHash({ exitCode: null, files: [] })).to.equal(keccak256(toUtf8Bytes('{"exitCode":null,"files":[]}')));
      expect(() => resultHash({ exitCode: 0, files: [a, { ...a, sha256: "6".repeat(64) }] })).to.throw(TypeError, '"a.txt" is listed twice');
    });
  });

  describe("TaskSpec.ledgerTaskId", () => {
    const base = { taskId: "t1", runId: "7", image: "computenet/busybox:latest", command: ["true"], memoryMB: 64, cpus: 1 };

    it("is optional and, when present, a positive decimal uint256 without leading zeros", () => {
      expect(validateTaskSpec(base)).to.not.have.property("ledgerTaskId");
      expect(validateTaskSpec({ ...base, ledgerTaskId: "12" }).ledgerTaskId).to.equal("12");
      expect(validateTaskSpec({ ...base, ledgerTaskId: (2n ** 256n - 1n).toString() }).ledgerTaskId).to.equal((2n ** 256n - 1n).toString());
      for (const bad of ["0", "012", "-1", "1e3", " 1", "abc"]) {
        expect(() => validateTaskSpec({ ...base, ledgerTaskId: bad }), bad).to.throw("invalid TaskSpec.ledgerTaskId: must be a positive decimal integer without leading zeros");
      }
      expect(() => validateTaskSpec({ ...base, ledgerTaskId: (2n ** 256n).toString() })).to.throw("invalid TaskSpec.ledgerTaskId: must fit in a uint256");
      expect(() => validateTaskSpec({ ...base, ledgerTaskId: 12 })).to.throw(/invalid TaskSpec.ledgerTaskId/);
    });
  });
});
