#!/usr/bin/env node
// Runs an ONNX model in ONNX Runtime (the CPU library of the npm package onnxruntime-node) on inputs read
// from .npy files and writes every output as .npy, for the ONNX integration test (run_onnx_e2e.py).
//
//   node ort_run.js MODEL.onnx OUTDIR name=in.npy... [--bench N] [--dump-all] [--threads N]
//                   [--steps N --split NAME... --feedback OUT:IN...]
//
// OUTDIR gets one .npy per output (the value name with characters outside [A-Za-z0-9._-] replaced by '_')
// and outputs.json: [{name, file, dtype, shape}]. --bench N: N timed runs after 3 warm-ups, then one JSON
// line {"model", "runs", "median_ms", "min_ms"} on stdout. --dump-all: every float value of the top-level
// graph becomes an output too (the model is rewritten by onnx_models.py --expose into a temporary file),
// which is how calibration activations are dumped. --steps N runs a stateful model N times in one session
// (a stream of chunks): each --split input's .npy holds the N chunks on axis 0 (one per run), each
// --feedback OUT:IN feeds output OUT of one run as input IN of the next, and each output is written with
// the N runs stacked on a new axis 0. Sessions run on 1 thread with all graph optimizations.
// onnxruntime-node is required from $QK_ORT_NODE_MODULES, else <repo>/.deps/ort/node_modules
// (scripts/install-deps.sh installs it there). Any failure: a message on stderr and exit status 1.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');

function fail(msg) {
  process.stderr.write(`ort_run: ${msg}\n`);
  process.exit(1);
}

// ---- .npy (format 1.0/2.0, little-endian, C order) ----
// npy descr <-> ONNX Runtime tensor type and the typed array holding its data.
const NPY_TYPES = {
  '<f4': ['float32', Float32Array], '<f8': ['float64', Float64Array], '<i8': ['int64', BigInt64Array],
  '<i4': ['int32', Int32Array], '<i2': ['int16', Int16Array], '|i1': ['int8', Int8Array],
  '|u1': ['uint8', Uint8Array], '<u8': ['uint64', BigUint64Array], '|b1': ['bool', Uint8Array],
};

function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY') fail(`${file}: not a .npy file`);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + headerLen);
  const descr = /'descr':\s*'([^']+)'/.exec(header);
  const order = /'fortran_order':\s*(True|False)/.exec(header);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !order || !shape) fail(`${file}: bad .npy header ${header.trim()}`);
  if (order[1] === 'True') fail(`${file}: Fortran order is not supported`);
  const type = NPY_TYPES[descr[1]];
  if (!type) fail(`${file}: dtype ${descr[1]} is not supported`);
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s.length).map(Number);
  const count = dims.reduce((a, b) => a * b, 1);
  const [ortType, Arr] = type;
  const offset = start + headerLen;
  if (buf.length - offset !== count * Arr.BYTES_PER_ELEMENT) fail(`${file}: data size disagrees with shape`);
  // Copy into a fresh, aligned buffer.
  const data = new Arr(count);
  new Uint8Array(data.buffer).set(buf.subarray(offset, offset + count * Arr.BYTES_PER_ELEMENT));
  return { type: ortType, data, dims };
}

function writeNpy(file, tensor) {
  const entry = Object.entries(NPY_TYPES).find(([, [t]]) => t === tensor.type);
  if (!entry) fail(`output type ${tensor.type} cannot be written as .npy`);
  const dims = tensor.dims.map(Number);
  const shape = dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`;
  let header = `{'descr': '${entry[0]}', 'fortran_order': False, 'shape': ${shape}, }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';  // total header a multiple of 64 bytes
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  const data = tensor.data;
  fs.writeFileSync(file, Buffer.concat([pre, Buffer.from(header, 'latin1'),
    Buffer.from(data.buffer, data.byteOffset, data.byteLength)]));
}

// ---- arguments ----
const args = process.argv.slice(2);
let bench = 0, dumpAll = false, threads = 1, steps = 0;
const positional = [], split = [], feedback = [];
for (let i = 0; i < args.length; ++i) {
  if (args[i] === '--bench') bench = parseInt(args[++i], 10);
  else if (args[i] === '--steps') steps = parseInt(args[++i], 10);
  else if (args[i] === '--split') split.push(args[++i]);
  else if (args[i] === '--feedback') feedback.push(String(args[++i]).split(':'));
  else if (args[i] === '--dump-all') dumpAll = true;
  else if (args[i] === '--threads') threads = parseInt(args[++i], 10);
  else positional.push(args[i]);
}
if (positional.length < 2 || !(bench >= 0) || !(threads >= 1) || !(steps >= 0) || feedback.some((f) => f.length !== 2)) {
  fail('usage: node ort_run.js MODEL.onnx OUTDIR name=in.npy... [--bench N] [--dump-all] [--threads N] '
    + '[--steps N --split NAME... --feedback OUT:IN...]');
}
const [modelArg, outDir, ...inputArgs] = positional;
if (!fs.existsSync(modelArg)) fail(`${modelArg}: no such file`);

const modules = process.env.QK_ORT_NODE_MODULES || path.join(__dirname, '..', '..', '.deps', 'ort', 'node_modules');
let ort;
try {
  ort = require(path.join(path.resolve(modules), 'onnxruntime-node'));
} catch (e) {
  fail(`cannot load onnxruntime-node from ${modules} (run scripts/install-deps.sh or set QK_ORT_NODE_MODULES): `
    + e.message.split('\n')[0]);
}

async function main() {
  let model = modelArg;
  let tmp = null;
  if (dumpAll) {
    // Rewrite the model with every top-level float value as an output (python3 with onnx, see onnx_models.py).
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ort_run_'));
    model = path.join(tmp, 'exposed.onnx');
    const py = process.env.QK_PYTHON3 || '/usr/bin/python3';
    try {
      execFileSync(py, [path.join(__dirname, 'onnx_models.py'), '--expose', modelArg, model], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (e) {
      fail(`cannot expose the values of ${modelArg}: ${(e.stderr || e.message).toString().trim()}`);
    }
  }
  const feeds = {}, chunks = {};  // chunks: the --split inputs, N runs' values each
  for (const a of inputArgs) {
    const eq = a.indexOf('=');
    if (eq <= 0) fail(`bad input argument '${a}' (want name=file.npy)`);
    const name = a.slice(0, eq), file = a.slice(eq + 1);
    if (!fs.existsSync(file)) fail(`${file}: no such file`);
    const t = readNpy(file);
    if (split.includes(name)) {
      if (steps === 0 || t.dims[0] !== steps) fail(`${file}: --split ${name} needs a .npy of ${steps} chunks on axis 0`);
      const per = t.data.length / steps;
      chunks[name] = Array.from({ length: steps },
        (_, s) => new ort.Tensor(t.type, t.data.slice(s * per, (s + 1) * per), t.dims.slice(1)));
      feeds[name] = chunks[name][0];
    } else {
      feeds[name] = new ort.Tensor(t.type, t.data, t.dims);
    }
  }
  if (split.some((n) => !chunks[n])) fail('every --split NAME needs a NAME=file.npy input');
  let session;
  try {
    session = await ort.InferenceSession.create(model, {
      intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all',
    });
  } catch (e) {
    fail(`${modelArg}: ONNX Runtime cannot load the model: ${e.message}`);
  } finally {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  }
  let results;
  try {
    results = await session.run(feeds);
    if (steps > 0) results = await stream(session, feeds, chunks, results);
    if (bench > 0) {
      for (let i = 0; i < 3; ++i) await session.run(feeds);
      const times = [];
      for (let i = 0; i < bench; ++i) {
        const t0 = process.hrtime.bigint();
        await session.run(feeds);
        times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      times.sort((a, b) => a - b);
      const median = times.length % 2 ? times[(times.length - 1) / 2]
        : (times[times.length / 2 - 1] + times[times.length / 2]) / 2;
      console.log(JSON.stringify({ model: modelArg, runs: bench, median_ms: median, min_ms: times[0] }));
    }
  } catch (e) {
    fail(`${modelArg}: run failed: ${e.message}`);
  }
  fs.mkdirSync(outDir, { recursive: true });
  const index = [];
  const used = new Set();
  for (const name of session.outputNames) {
    const t = results[name];
    let file = name.replace(/[^A-Za-z0-9._-]/g, '_');
    while (used.has(file)) file += '_';
    used.add(file);
    writeNpy(path.join(outDir, `${file}.npy`), t);
    index.push({ name, file: `${file}.npy`, dtype: t.type, shape: t.dims.map(Number) });
  }
  fs.writeFileSync(path.join(outDir, 'outputs.json'), JSON.stringify(index, null, 1) + '\n');
}

// Runs 2..N of a --steps stream (run 1 gave `first`); returns the outputs stacked on a new axis 0.
async function stream(session, feeds, chunks, first) {
  const runs = [first];
  for (let s = 1; s < steps; ++s) {
    for (const [name, list] of Object.entries(chunks)) feeds[name] = list[s];
    for (const [out, inp] of feedback) {
      if (!runs[s - 1][out]) fail(`--feedback: the model has no output ${out}`);
      feeds[inp] = runs[s - 1][out];
    }
    runs.push(await session.run(feeds));
  }
  const stacked = {};
  for (const name of session.outputNames) {
    const parts = runs.map((r) => r[name]);
    const data = new parts[0].data.constructor(parts.reduce((n, p) => n + p.data.length, 0));
    parts.forEach((p, i) => data.set(p.data, i * p.data.length));
    stacked[name] = { type: parts[0].type, data, dims: [steps, ...parts[0].dims] };
  }
  return stacked;
}

main().catch((e) => fail(e.message));
