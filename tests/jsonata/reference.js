// Reads cases as JSON lines on stdin, one {"expr", "input"?, "bindings"?}
// per line, evaluates each with the reference JSONata and writes one JSON
// line per case: {"value": v}, {"undefined": true}, {"function": true} or
// {"error": code}. One process for every case keeps the test fast.
'use strict';
const jsonata = require('jsonata');
const readline = require('readline');

function hasFunction(v) {
  if (typeof v === 'function') return true;
  if (v && typeof v === 'object') {
    if (v._jsonata_lambda || v._jsonata_function) return true;
    for (const k of Object.keys(v)) if (hasFunction(v[k])) return true;
  }
  return false;
}

async function evalOne(c) {
  let expr;
  try {
    expr = jsonata(c.expr);
  } catch (e) {
    return { error: e.code || 'parse', message: e.message };
  }
  try {
    const t0 = Date.now();
    const r = await expr.evaluate(c.input, c.bindings || {});
    if (r === undefined) return { undefined: true };
    if (hasFunction(r)) return { function: true };
    const s = JSON.stringify(r, (k, v) => (typeof v === 'number' && !isFinite(v) ? 'NaN' : v));
    if (s === undefined) return { undefined: true };
    return { value: JSON.parse(s) };
  } catch (e) {
    return { error: e.code || 'runtime', message: e.message };
  }
}

(async () => {
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  const out = [];
  for await (const line of rl) {
    if (!line.trim()) continue;
    const c = JSON.parse(line);
    out.push(JSON.stringify(await evalOne(c)));
  }
  process.stdout.write(out.join('\n') + '\n');
})();
