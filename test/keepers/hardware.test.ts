/**
 * The miner's hardware detection and requirement check (keepers/miner/hardware.ts).
 *
 * This machine has no GPU, so GPU detection runs on recorded outputs under fixtures/hardware/
 * (representative samples of real machines, not captured here); one test runs the real detection on this
 * machine. The requirement check is held to TrainingRuns._checkRequirements' boundaries.
 */
import { chmod, mkdtemp, rm, statfs, writeFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "chai";
import { ZeroHash, decodeBytes32String } from "ethers";
import si from "systeminformation";
import { type Capabilities, gpuModel } from "../../scripts/lib/protocol.js";
import {
  type GraphicsLike,
  type HardwareReport,
  type RequirementsLike,
  type SystemInformationLike,
  checkRequirements,
  detectHardware,
  formatRequirementReport,
  gpusFromSystemInformation,
  normaliseGpuModel,
  parseNvidiaSmiCsv,
  runNvidiaSmi,
  toCapabilities,
} from "../../keepers/miner/hardware.js";

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), "fixtures", "hardware");

/** A recorded nvidia-smi output without the fixture's "#" note lines. */
function smiFixture(name: string): string {
  return readFileSync(path.join(FIXTURES, name), "utf8")
    .split("\n")
    .filter((line) => !line.startsWith("#"))
    .join("\n");
}

function graphicsFixture(name: string): GraphicsLike {
  return JSON.parse(readFileSync(path.join(FIXTURES, name), "utf8")) as GraphicsLike;
}

const DGX_H100 = "nvidia-smi-dgx-h100-8x.csv";
const A100_4X = "nvidia-smi-4x-a100-sxm4-40gb.csv";
const RTX_4090 = "nvidia-smi-rtx4090.csv";
const MIXED = "nvidia-smi-mixed-a6000-3090.csv";
const A10G_NA = "nvidia-smi-4x-a10g-na-memory-trailing-blank.csv";
const SI_A100_SERVER = "si-graphics-nvidia-a100-server.json";
const SI_KVM = "si-graphics-kvm-virtual-display.json";

/** systeminformation's cpu(), mem() and system() of a DGX H100, as documented (2x Xeon 8480C, 2 TiB). */
function recordedSi(graphics: GraphicsLike): SystemInformationLike {
  return {
    cpu: async () => ({ manufacturer: "Intel", brand: "Xeon® Platinum 8480C", cores: 224 }),
    mem: async () => ({ total: 2_164_148_695_040 }),
    graphics: async () => graphics,
    system: async () => ({ virtual: false }),
  };
}

function report(overrides: Partial<HardwareReport> = {}): HardwareReport {
  return {
    cpuCores: 64,
    cpuModel: "AMD EPYC 7763",
    ramMB: 512_000,
    storageGB: 2_000,
    storagePath: "/data",
    gpus: [],
    virtual: false,
    ...overrides,
  };
}

describe("hardware", function () {
  describe("parseNvidiaSmiCsv", function () {
    it("reads the eight H100s of a DGX H100 with their memory and bus ids", function () {
      const gpus = parseNvidiaSmiCsv(smiFixture(DGX_H100));
      expect(gpus).to.have.length(8);
      expect(gpus.every((gpu) => gpu.model === "NVIDIA H100 80GB HBM3" && gpu.memoryMB === 81559)).to.equal(true);
      expect(gpus.every((gpu) => gpu.vendor === "NVIDIA")).to.equal(true);
      expect(gpus.map((gpu) => gpu.busId)).to.deep.equal([
        "00000000:18:00.0",
        "00000000:2A:00.0",
        "00000000:3A:00.0",
        "00000000:5D:00.0",
        "00000000:9A:00.0",
        "00000000:AB:00.0",
        "00000000:BA:00.0",
        "00000000:DB:00.0",
      ]);
    });

    it("reads four A100-SXM4-40GB", function () {
      const gpus = parseNvidiaSmiCsv(smiFixture(A100_4X));
      expect(gpus).to.have.length(4);
      expect(gpus[0]).to.deep.equal({
        model: "NVIDIA A100-SXM4-40GB",
        memoryMB: 40960,
        vendor: "NVIDIA",
        busId: "00000000:07:00.0",
      });
    });

    it("reads a single RTX 4090", function () {
      expect(parseNvidiaSmiCsv(smiFixture(RTX_4090))).to.deep.equal([
        { model: "NVIDIA GeForce RTX 4090", memoryMB: 24564, vendor: "NVIDIA", busId: "00000000:01:00.0" },
      ]);
    });

    it("keeps each GPU of a mixed box with its own model and memory", function () {
      const gpus = parseNvidiaSmiCsv(smiFixture(MIXED));
      expect(gpus.map((gpu) => [gpu.model, gpu.memoryMB])).to.deep.equal([
        ["NVIDIA RTX A6000", 49140],
        ["NVIDIA GeForce RTX 3090", 24576],
        ["NVIDIA RTX A6000", 49140],
      ]);
    });

    it("counts a GPU whose memory reads [N/A] with 0 MiB and ignores the trailing blank line", function () {
      const gpus = parseNvidiaSmiCsv(smiFixture(A10G_NA));
      expect(gpus.map((gpu) => gpu.memoryMB)).to.deep.equal([23028, 23028, 0, 23028]);
      expect(gpus[2].busId).to.equal("00000000:00:1D.0");
    });

    it("skips a header line and error messages, accepts CRLF and a MiB unit", function () {
      const output =
        "name, memory.total [MiB], pci.bus_id\r\n" +
        "Unable to determine the device handle for GPU0000:3B:00.0: Unknown Error\r\n" +
        "NVIDIA L4, 23034 MiB, 00000000:3B:00.0\r\n";
      expect(parseNvidiaSmiCsv(output)).to.deep.equal([
        { model: "NVIDIA L4", memoryMB: 23034, vendor: "NVIDIA", busId: "00000000:3B:00.0" },
      ]);
    });

    it("returns no GPU for empty output", function () {
      expect(parseNvidiaSmiCsv("")).to.deep.equal([]);
      expect(parseNvidiaSmiCsv("\n")).to.deep.equal([]);
    });
  });

  describe("gpusFromSystemInformation", function () {
    it("takes a server's NVIDIA controllers with nvidia-smi's figures and drops its ASPEED adapter", function () {
      expect(gpusFromSystemInformation(graphicsFixture(SI_A100_SERVER))).to.deep.equal([
        { model: "NVIDIA A100 80GB PCIe", memoryMB: 81920, vendor: "NVIDIA Corporation", busId: "17:00.0" },
        { model: "NVIDIA A100 80GB PCIe", memoryMB: 81920, vendor: "NVIDIA Corporation", busId: "ca:00.0" },
      ]);
    });

    it("finds no GPU in a VM whose only adapter is a virtual display", function () {
      expect(graphicsFixture(SI_KVM).controllers).to.have.length(1);
      expect(gpusFromSystemInformation(graphicsFixture(SI_KVM))).to.deep.equal([]);
    });

    it("falls back to lspci's model and vram when nvidia-smi's figures are missing", function () {
      const gpus = gpusFromSystemInformation({
        controllers: [
          { vendor: "NVIDIA Corporation", model: "AD102 [GeForce RTX 4090]", vram: 32768, busAddress: "01:00.0" },
        ],
      });
      expect(gpus).to.deep.equal([
        { model: "AD102 [GeForce RTX 4090]", memoryMB: 32768, vendor: "NVIDIA Corporation", busId: "01:00.0" },
      ]);
    });

    it("ignores named display and virtual adapters even with large video memory", function () {
      const named = [
        { vendor: "VMware, Inc.", model: "VMware SVGA 3D" },
        { vendor: "Cirrus Logic", model: "GD 5446" },
        { vendor: "Matrox Electronics Systems Ltd.", model: "MGA G200eW WPCM450" },
        { vendor: "ASPEED Technology, Inc.", model: "ASPEED Graphics Family" },
        { vendor: "Microsoft Corporation", model: "Hyper-V virtual VGA" },
        { vendor: "Red Hat, Inc.", model: "Virtio 1.0 GPU" },
        { vendor: "Red Hat, Inc.", model: "QXL paravirtual graphic card" },
      ];
      const controllers = named.map((controller) => ({ ...controller, vram: 4096 }));
      expect(gpusFromSystemInformation({ controllers })).to.deep.equal([]);
    });

    it("ignores controllers with less than 1 GiB, with no memory figure, or without a name", function () {
      const controllers = [
        { vendor: "Intel Corporation", model: "CometLake-S GT2 [UHD Graphics 630]", vram: 256 },
        { vendor: "Advanced Micro Devices, Inc. [AMD/ATI]", model: "Navi 31 [Radeon RX 7900 XTX]", vram: null },
        { vendor: "", model: "", vram: 8192 },
        { vendor: "Advanced Micro Devices, Inc. [AMD/ATI]", model: "Navi 31 [Radeon RX 7900 XTX]", vram: 1024 },
      ];
      expect(gpusFromSystemInformation({ controllers }).map((gpu) => gpu.memoryMB)).to.deep.equal([1024]);
    });
  });

  describe("normaliseGpuModel", function () {
    const cases: Array<[string, string]> = [
      ["NVIDIA H100 80GB HBM3", "H100-80GB"],
      ["nvidia h100 80gb hbm3", "H100-80GB"],
      ["GH100 [H100 SXM5 80GB]", "H100-80GB"],
      ["NVIDIA A100-SXM4-40GB", "A100-40GB"],
      ["A100-SXM4-40GB", "A100-40GB"],
      ["NVIDIA A100-PCIE-40GB", "A100-40GB"],
      ["NVIDIA A100 80GB PCIe", "A100-80GB"],
      ["GA100 [A100 PCIe 80GB]", "A100-80GB"],
      ["NVIDIA GeForce RTX 4090", "RTX-4090"],
      ["AD102 [GeForce RTX 4090]", "RTX-4090"],
      ["NVIDIA RTX A6000", "RTX-A6000"],
      ["Tesla V100-SXM2-16GB", "V100-16GB"],
      ["GV100GL [Tesla V100 SXM2 16GB]", "V100-16GB"],
      ["Tesla T4", "T4"],
      ["NVIDIA H100 PCIe", "H100"],
      ["NVIDIA H100 NVL", "H100-NVL"],
      ["NVIDIA L40S", "L40S"],
      ["Aqua Vanjaram [Instinct MI300X]", "MI300X"],
      ["", "UNKNOWN"],
      ["NVIDIA", "UNKNOWN"],
    ];
    for (const [name, expected] of cases) {
      it(`normalises "${name}" to "${expected}"`, function () {
        expect(normaliseGpuModel(name)).to.equal(expected);
      });
    }

    it("cuts long names to 31 bytes so that they fit a bytes32 string", function () {
      const model = normaliseGpuModel("Ellesmere [Radeon RX 470/480/570/570X/580/580X/590]");
      expect(model).to.equal("RX-470-480-570-570X-580-580X-59");
      expect(Buffer.byteLength(model)).to.equal(31);
      expect(decodeBytes32String(gpuModel(model))).to.equal(model);
    });

    it("never ends a cut name with a dash", function () {
      // 15 + 1 + 14 letters: the 31st byte is the dash before "XYZ".
      const model = normaliseGpuModel("ABCDEFGHIJKLMNO ABCDEFGHIJKLMN XYZ");
      expect(model).to.equal("ABCDEFGHIJKLMNO-ABCDEFGHIJKLMN");
    });
  });

  describe("toCapabilities", function () {
    it("declares a DGX H100 as 8 x H100-80GB with 81559 MiB each", function () {
      const caps = toCapabilities(report({ gpus: parseNvidiaSmiCsv(smiFixture(DGX_H100)) }));
      expect(caps).to.deep.equal({
        gpuCount: 8,
        gpuModel: gpuModel("H100-80GB"),
        gpuMemoryMB: 81559,
        cpuCores: 64,
        ramMB: 512_000,
        storageGB: 2_000,
      });
    });

    it("declares the most common model of a mixed box, and only its GPUs", function () {
      const caps = toCapabilities(report({ gpus: parseNvidiaSmiCsv(smiFixture(MIXED)) }));
      expect(caps.gpuCount).to.equal(2);
      expect(decodeBytes32String(caps.gpuModel)).to.equal("RTX-A6000");
      expect(caps.gpuMemoryMB).to.equal(49140);
    });

    it("prefers the more common model over one with more memory", function () {
      const gpus = [
        { model: "NVIDIA RTX A6000", memoryMB: 49140, vendor: "NVIDIA" },
        { model: "NVIDIA GeForce RTX 3090", memoryMB: 24576, vendor: "NVIDIA" },
        { model: "NVIDIA GeForce RTX 3090", memoryMB: 24576, vendor: "NVIDIA" },
      ];
      const caps = toCapabilities(report({ gpus }));
      expect([caps.gpuCount, decodeBytes32String(caps.gpuModel), caps.gpuMemoryMB]).to.deep.equal([
        2,
        "RTX-3090",
        24576,
      ]);
    });

    it("declares the smallest memory among the GPUs of the chosen model", function () {
      const gpus = [
        { model: "NVIDIA RTX A6000", memoryMB: 49140, vendor: "NVIDIA" },
        { model: "NVIDIA RTX A6000", memoryMB: 48685, vendor: "NVIDIA" },
        { model: "NVIDIA GeForce RTX 3090", memoryMB: 24576, vendor: "NVIDIA" },
      ];
      expect(toCapabilities(report({ gpus })).gpuMemoryMB).to.equal(48685);
    });

    it("breaks a tie in count by the larger memory", function () {
      const gpus = [
        { model: "NVIDIA GeForce RTX 3090", memoryMB: 24576, vendor: "NVIDIA" },
        { model: "NVIDIA RTX A6000", memoryMB: 49140, vendor: "NVIDIA" },
      ];
      const caps = toCapabilities(report({ gpus }));
      expect([caps.gpuCount, decodeBytes32String(caps.gpuModel), caps.gpuMemoryMB]).to.deep.equal([
        1,
        "RTX-A6000",
        49140,
      ]);
    });

    it("breaks a tie in count and memory by the name, whatever the order of detection", function () {
      const rtx4090 = { model: "NVIDIA GeForce RTX 4090", memoryMB: 24576, vendor: "NVIDIA" };
      const rtx3090 = { model: "NVIDIA GeForce RTX 3090", memoryMB: 24576, vendor: "NVIDIA" };
      for (const gpus of [
        [rtx4090, rtx3090],
        [rtx3090, rtx4090],
      ]) {
        expect(decodeBytes32String(toCapabilities(report({ gpus })).gpuModel)).to.equal("RTX-3090");
      }
    });

    it("leaves a GPU whose memory could not be read out of the minimum", function () {
      const caps = toCapabilities(report({ gpus: parseNvidiaSmiCsv(smiFixture(A10G_NA)) }));
      expect([caps.gpuCount, decodeBytes32String(caps.gpuModel), caps.gpuMemoryMB]).to.deep.equal([4, "A10G", 23028]);
    });

    it("declares 0 MiB when no GPU's memory could be read", function () {
      const gpus = [{ model: "NVIDIA GH200 480GB", memoryMB: 0, vendor: "NVIDIA" }];
      expect(toCapabilities(report({ gpus })).gpuMemoryMB).to.equal(0);
    });

    it("uses the operator's model name over the normalised one", function () {
      const gpus = parseNvidiaSmiCsv("NVIDIA H100 PCIe, 81559, 00000000:01:00.0\n");
      expect(decodeBytes32String(toCapabilities(report({ gpus })).gpuModel)).to.equal("H100");
      const caps = toCapabilities(report({ gpus }), { gpuModel: "H100-80GB-PCIE" });
      expect(caps.gpuModel).to.equal(gpuModel("H100-80GB-PCIE"));
      expect(caps.gpuCount).to.equal(1);
    });

    it("rejects an operator model name longer than 31 bytes", function () {
      const gpus = parseNvidiaSmiCsv(smiFixture(RTX_4090));
      expect(() => toCapabilities(report({ gpus }), { gpuModel: "x".repeat(32) })).to.throw();
    });

    it("declares a CPU-only node with a zero model, even with an operator override", function () {
      const caps = toCapabilities(report(), { gpuModel: "H100-80GB" });
      expect([caps.gpuCount, caps.gpuModel, caps.gpuMemoryMB]).to.deep.equal([0, ZeroHash, 0]);
    });

    it("clamps figures to the on-chain uint16 and uint32 maximums", function () {
      const gpus = Array.from({ length: 70_000 }, () => ({ model: "NVIDIA L4", memoryMB: 5e9, vendor: "NVIDIA" }));
      const caps = toCapabilities(report({ gpus, cpuCores: 70_000, ramMB: 5e9, storageGB: 5e9 }));
      expect(caps).to.deep.equal({
        gpuCount: 65_535,
        gpuModel: gpuModel("L4"),
        gpuMemoryMB: 4_294_967_295,
        cpuCores: 65_535,
        ramMB: 4_294_967_295,
        storageGB: 4_294_967_295,
      });
    });
  });

  describe("runNvidiaSmi", function () {
    let dir: string;

    before(async function () {
      dir = await mkdtemp(path.join(os.tmpdir(), "hardware-test-"));
    });

    after(async function () {
      await rm(dir, { recursive: true, force: true });
    });

    async function script(name: string, body: string): Promise<string> {
      const file = path.join(dir, name);
      await writeFile(file, `#!/bin/sh\n${body}\n`);
      await chmod(file, 0o755);
      return file;
    }

    it("resolves null when nvidia-smi is not installed (this machine)", async function () {
      expect(await runNvidiaSmi()).to.equal(null);
      expect(await runNvidiaSmi({ executable: path.join(dir, "absent-nvidia-smi") })).to.equal(null);
    });

    it("passes the query arguments and returns the output", async function () {
      const fake = await script("echo-args", 'echo "$@"');
      expect(await runNvidiaSmi({ executable: fake })).to.equal(
        "--query-gpu=name,memory.total,pci.bus_id --format=csv,noheader,nounits\n",
      );
    });

    it('resolves "" when the driver finds no devices (exit code 6)', async function () {
      const fake = await script("no-devices", "echo 'No devices were found'; exit 6");
      expect(await runNvidiaSmi({ executable: fake })).to.equal("");
    });

    it("rejects with nvidia-smi's message when the driver is broken", async function () {
      const fake = await script(
        "broken",
        'echo "NVIDIA-SMI has failed because it couldn\'t communicate with the NVIDIA driver."; exit 9',
      );
      let failure: unknown;
      await runNvidiaSmi({ executable: fake }).catch((error: unknown) => (failure = error));
      expect(String(failure)).to.match(/failed: NVIDIA-SMI has failed because it couldn't communicate/);
    });

    it("rejects when nvidia-smi hangs past the timeout", async function () {
      const fake = await script("hang", "exec sleep 5");
      const started = Date.now();
      let failure: unknown;
      await runNvidiaSmi({ executable: fake, timeoutMs: 200 }).catch((error: unknown) => (failure = error));
      expect(String(failure)).to.match(/failed: timed out/);
      expect(Date.now() - started).to.be.below(2_000);
    });
  });

  describe("detectHardware", function () {
    it("reports this machine's CPU, RAM and free storage, and no GPU, within a few seconds", async function () {
      this.timeout(10_000);
      const started = Date.now();
      const detected = await detectHardware();
      expect(Date.now() - started).to.be.below(5_000);

      expect(detected.cpuCores).to.be.greaterThan(0);
      expect(detected.cpuCores).to.equal(os.cpus().length);
      expect(detected.ramMB).to.be.greaterThan(0);
      expect(detected.ramMB).to.equal(Math.floor(os.totalmem() / 2 ** 20));
      expect(detected.storageGB).to.be.greaterThan(0);
      expect(detected.storagePath).to.equal(process.cwd());
      expect(detected.gpus).to.deep.equal([]);
      expect(detected.virtual).to.equal((await si.system()).virtual);
    });

    it("measures the free space of the filesystem holding storagePath, in GB floored", async function () {
      const dir = await mkdtemp(path.join(os.tmpdir(), "hardware-storage-"));
      try {
        const detected = await detectHardware({
          storagePath: dir,
          si: recordedSi({ controllers: [] }),
          nvidiaSmi: async () => null,
        });
        const stats = await statfs(dir);
        const expected = Math.floor((stats.bavail * stats.bsize) / 1e9);
        expect(detected.storagePath).to.equal(dir);
        // Other processes write to the same disk meanwhile: allow one GB of drift.
        expect(Math.abs(detected.storageGB - expected)).to.be.at.most(1);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it("rejects a storagePath that does not exist", async function () {
      const missing = path.join(os.tmpdir(), "hardware-test-does-not-exist", "data");
      let failure: unknown;
      await detectHardware({
        storagePath: missing,
        si: recordedSi({ controllers: [] }),
        nvidiaSmi: async () => null,
      }).catch((error: unknown) => (failure = error));
      expect(String(failure)).to.include("ENOENT");
    });

    it("reports a DGX H100 from recorded systeminformation and nvidia-smi outputs", async function () {
      const detected = await detectHardware({
        storagePath: os.tmpdir(),
        si: recordedSi(graphicsFixture(SI_KVM)),
        nvidiaSmi: async () => smiFixture(DGX_H100),
      });
      expect(detected.cpuCores).to.equal(224);
      expect(detected.cpuModel).to.equal("Intel Xeon® Platinum 8480C");
      expect(detected.ramMB).to.equal(2_063_893);
      expect(detected.virtual).to.equal(false);
      expect(detected.gpus).to.deep.equal(parseNvidiaSmiCsv(smiFixture(DGX_H100)));
      const caps = toCapabilities(detected);
      expect([caps.gpuCount, decodeBytes32String(caps.gpuModel), caps.gpuMemoryMB]).to.deep.equal([
        8,
        "H100-80GB",
        81559,
      ]);
    });

    it("prefers nvidia-smi for NVIDIA GPUs and keeps other vendors' GPUs from systeminformation", async function () {
      const graphics: GraphicsLike = {
        controllers: [
          // Without the driver's figures lspci only knows the PCI window: 128 GiB for an 80 GB H100.
          { vendor: "NVIDIA Corporation", model: "GH100 [H100 SXM5 80GB]", vram: 131072, busAddress: "18:00.0" },
          {
            vendor: "Advanced Micro Devices, Inc. [AMD/ATI]",
            model: "Aqua Vanjaram [Instinct MI300X]",
            vram: 196608,
            busAddress: "05:00.0",
          },
        ],
      };
      const detected = await detectHardware({
        storagePath: os.tmpdir(),
        si: recordedSi(graphics),
        nvidiaSmi: async () => "NVIDIA H100 80GB HBM3, 81559, 00000000:18:00.0\n",
      });
      expect(detected.gpus).to.deep.equal([
        { model: "NVIDIA H100 80GB HBM3", memoryMB: 81559, vendor: "NVIDIA", busId: "00000000:18:00.0" },
        {
          model: "Aqua Vanjaram [Instinct MI300X]",
          memoryMB: 196608,
          vendor: "Advanced Micro Devices, Inc. [AMD/ATI]",
          busId: "05:00.0",
        },
      ]);
    });

    it("falls back to systeminformation when nvidia-smi is absent", async function () {
      const detected = await detectHardware({
        storagePath: os.tmpdir(),
        si: recordedSi(graphicsFixture(SI_A100_SERVER)),
        nvidiaSmi: async () => null,
      });
      expect(detected.gpus.map((gpu) => [gpu.model, gpu.memoryMB])).to.deep.equal([
        ["NVIDIA A100 80GB PCIe", 81920],
        ["NVIDIA A100 80GB PCIe", 81920],
      ]);
      expect(decodeBytes32String(toCapabilities(detected).gpuModel)).to.equal("A100-80GB");
    });

    it("falls back to systeminformation when nvidia-smi finds no device", async function () {
      const detected = await detectHardware({
        storagePath: os.tmpdir(),
        si: recordedSi(graphicsFixture(SI_A100_SERVER)),
        nvidiaSmi: async () => "",
      });
      expect(detected.gpus).to.have.length(2);
    });

    it("rejects when nvidia-smi fails, before systeminformation can run it without a timeout", async function () {
      let graphicsCalled = false;
      const recorded = recordedSi(graphicsFixture(SI_KVM));
      const watched = { ...recorded, graphics: () => ((graphicsCalled = true), recorded.graphics()) };
      let failure: unknown;
      await detectHardware({
        storagePath: os.tmpdir(),
        si: watched,
        nvidiaSmi: () => Promise.reject(new Error("nvidia-smi failed: timed out")),
      }).catch((error: unknown) => (failure = error));
      expect(String(failure)).to.include("nvidia-smi failed: timed out");
      expect(graphicsCalled).to.equal(false);
    });

    it("reports virtual: true when systeminformation says so", async function () {
      const vm = { ...recordedSi(graphicsFixture(SI_KVM)), system: async () => ({ virtual: true }) };
      const detected = await detectHardware({ storagePath: os.tmpdir(), si: vm, nvidiaSmi: async () => null });
      expect(detected.virtual).to.equal(true);
      expect(detected.gpus).to.deep.equal([]);
    });
  });

  describe("checkRequirements", function () {
    const H100 = gpuModel("H100-80GB");
    const A100 = gpuModel("A100-80GB");
    const requirements: RequirementsLike = {
      minGpuCount: 8,
      minGpuMemoryMB: 81_920,
      minCpuCores: 64,
      minRamMB: 512_000,
      minStorageGB: 2_000,
      allowedGpuModels: [H100, A100],
    };
    const exact: Capabilities = {
      gpuCount: 8,
      gpuModel: H100,
      gpuMemoryMB: 81_920,
      cpuCores: 64,
      ramMB: 512_000,
      storageGB: 2_000,
    };

    it("passes a node exactly at every requirement", function () {
      expect(checkRequirements(exact, requirements)).to.deep.equal([]);
    });

    const numeric: Array<[keyof Capabilities, string, string]> = [
      ["gpuCount", "GpuCount", "8"],
      ["gpuMemoryMB", "GpuMemory", "81920"],
      ["cpuCores", "CpuCores", "64"],
      ["ramMB", "Ram", "512000"],
      ["storageGB", "Storage", "2000"],
    ];
    for (const [field, requirement, required] of numeric) {
      it(`reports ${requirement} when the node has one less`, function () {
        const caps = { ...exact, [field]: Number(required) - 1 };
        expect(checkRequirements(caps, requirements)).to.deep.equal([
          { requirement, required, actual: String(Number(required) - 1) },
        ]);
      });
    }

    it("treats a zero requirement as none", function () {
      const none: RequirementsLike = {
        minGpuCount: 0,
        minGpuMemoryMB: 0,
        minCpuCores: 0,
        minRamMB: 0,
        minStorageGB: 0,
        allowedGpuModels: [],
      };
      const empty = { gpuCount: 0, gpuModel: ZeroHash, gpuMemoryMB: 0, cpuCores: 0, ramMB: 0, storageGB: 0 };
      expect(checkRequirements(empty, none)).to.deep.equal([]);
    });

    it("accepts bigints as the contracts' views return them", function () {
      const big = {
        minGpuCount: 8n,
        minGpuMemoryMB: 81_920n,
        minCpuCores: 64n,
        minRamMB: 512_000n,
        minStorageGB: 2_000n,
      };
      const caps = { ...exact, gpuCount: 7n, storageGB: 2_000n };
      expect(checkRequirements(caps, { ...requirements, ...big })).to.deep.equal([
        { requirement: "GpuCount", required: "8", actual: "7" },
      ]);
    });

    it("passes an allowed model, whatever the case of its hex", function () {
      expect(checkRequirements({ ...exact, gpuModel: A100 }, requirements)).to.deep.equal([]);
      expect(
        checkRequirements({ ...exact, gpuModel: H100.toUpperCase().replace("0X", "0x") }, requirements),
      ).to.deep.equal([]);
    });

    it("reports a model that is not allowed, by name", function () {
      expect(checkRequirements({ ...exact, gpuModel: gpuModel("RTX-4090") }, requirements)).to.deep.equal([
        { requirement: "GpuModel", required: "H100-80GB, A100-80GB", actual: "RTX-4090" },
      ]);
    });

    it("accepts any model when the allowed list is empty", function () {
      expect(
        checkRequirements({ ...exact, gpuModel: gpuModel("RTX-4090") }, { ...requirements, allowedGpuModels: [] }),
      ).to.deep.equal([]);
    });

    it("reports a GPU-less node against an allowed list, as the contract does", function () {
      const gaps = checkRequirements({ ...exact, gpuModel: ZeroHash }, requirements);
      expect(gaps).to.deep.equal([{ requirement: "GpuModel", required: "H100-80GB, A100-80GB", actual: "" }]);
    });

    it("reports every missing requirement in the contract's order", function () {
      const rtx = toCapabilities(
        report({ cpuCores: 16, ramMB: 65_536, storageGB: 1_000, gpus: parseNvidiaSmiCsv(smiFixture(RTX_4090)) }),
      );
      expect(checkRequirements(rtx, requirements).map((gap) => gap.requirement)).to.deep.equal([
        "GpuCount",
        "GpuMemory",
        "CpuCores",
        "Ram",
        "Storage",
        "GpuModel",
      ]);
    });

    it("fails a real H100 80GB (81559 MiB) against 81920 MiB per GPU", function () {
      const dgx = toCapabilities(report({ gpus: parseNvidiaSmiCsv(smiFixture(DGX_H100)) }));
      expect(checkRequirements(dgx, requirements)).to.deep.equal([
        { requirement: "GpuMemory", required: "81920", actual: "81559" },
      ]);
      expect(checkRequirements(dgx, { ...requirements, minGpuMemoryMB: 81_559 })).to.deep.equal([]);
    });
  });

  describe("formatRequirementReport", function () {
    it("writes one line per missing requirement, prefixed with the run", function () {
      const text = formatRequirementReport(
        [
          { requirement: "GpuCount", required: "8", actual: "1" },
          { requirement: "GpuMemory", required: "81920", actual: "24576" },
          { requirement: "CpuCores", required: "64", actual: "16" },
          { requirement: "Ram", required: "512000", actual: "65536" },
          { requirement: "Storage", required: "2000", actual: "1000" },
          { requirement: "GpuModel", required: "H100-80GB, A100-80GB", actual: "RTX-4090" },
        ],
        { runId: 3n },
      );
      expect(text.split("\n")).to.deep.equal([
        "run 3: GPU count: needs 8 GPUs, this node has 1",
        "run 3: GPU memory: needs 81920 MiB per GPU, this node has 24576 MiB",
        "run 3: CPU cores: needs 64, this node has 16",
        "run 3: RAM: needs 512000 MiB, this node has 65536 MiB",
        "run 3: storage: needs 2000 GB free, this node has 1000 GB",
        "run 3: GPU model: needs one of H100-80GB, A100-80GB, this node has RTX-4090",
      ]);
    });

    it("says 'no GPU' for a node without a model, and leaves out the run when none is given", function () {
      expect(formatRequirementReport([{ requirement: "GpuModel", required: "H100-80GB", actual: "" }])).to.equal(
        "GPU model: needs one of H100-80GB, this node has no GPU",
      );
    });

    it("says the node meets every requirement when nothing is missing", function () {
      expect(formatRequirementReport([], { runId: "7" })).to.equal("run 7: this node meets every requirement");
      expect(formatRequirementReport([])).to.equal("this node meets every requirement");
    });
  });
});
