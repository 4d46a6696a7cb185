#!/usr/bin/env node
// Test-time only. The emulator's enforcing mode (tools/moto_server.py) asks this long-lived
// process to judge the requests a DynamoDB export makes. It reads one JSON object a line on
// stdin, {"id": any, "simulations": [Simulation, ...]}, and answers one line on stdout,
// {"id": same, "results": [Result, ...]}, in the same order. A Simulation is exactly the input
// of runSimulation in @cloud-copilot/iam-simulate (AGPL-3.0, pinned in package.json; never
// linked into, bundled with or shipped by the product). A Result is
//   {"overall": "Allowed"|"ExplicitlyDenied"|"ImplicitlyDenied"|null,
//    "layers": {"session"|"identity"|"resource"|"scp"|"rcp"|"pb": <that layer's own result>},
//    "denials": getDenialReasons(...), "blockedBy": [...], "errors": null | <why it refused>}
// A line it cannot parse gets {"id": null, "error": "..."}; the process never exits on bad input.
'use strict'

const readline = require('node:readline')
const { runSimulation, getDenialReasons } = require('@cloud-copilot/iam-simulate')

async function judge(simulation) {
  let response
  try {
    response = await runSimulation(simulation, {})
  } catch (err) {
    return { overall: null, layers: {}, denials: [], blockedBy: [], errors: String(err && err.stack || err) }
  }
  if (response.resultType === 'error') {
    return { overall: null, layers: {}, denials: [], blockedBy: [], errors: response.errors }
  }
  if (response.resultType !== 'single') {
    return {
      overall: response.overallResult || null, layers: {}, denials: [], blockedBy: [],
      errors: `expected one resource, iam-simulate answered ${response.resultType}`
    }
  }
  const analysis = response.result.analysis || {}
  const layers = {}
  const pick = (name, part) => { if (part && part.result) layers[name] = part.result }
  pick('session', analysis.sessionAnalysis)
  pick('identity', analysis.identityAnalysis)
  pick('resource', analysis.resourceAnalysis)
  pick('scp', analysis.scpAnalysis)
  pick('rcp', analysis.rcpAnalysis)
  pick('pb', analysis.permissionBoundaryAnalysis)
  return {
    overall: response.overallResult || analysis.result || null,
    layers,
    denials: getDenialReasons(analysis),
    blockedBy: analysis.blockedBy || [],
    errors: null
  }
}

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity })
let chain = Promise.resolve()
rl.on('line', (line) => {
  // Answer strictly in order: one request line, one answer line.
  chain = chain.then(async () => {
    let request
    try {
      request = JSON.parse(line)
    } catch (err) {
      process.stdout.write(JSON.stringify({ id: null, error: `bad JSON: ${err.message}` }) + '\n')
      return
    }
    const sims = Array.isArray(request.simulations) ? request.simulations : []
    const results = []
    for (const sim of sims) results.push(await judge(sim))
    process.stdout.write(JSON.stringify({ id: request.id === undefined ? null : request.id, results }) + '\n')
  })
})
rl.on('close', () => { chain.then(() => process.exit(0)) })
