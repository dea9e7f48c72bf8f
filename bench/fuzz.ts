/**
 * `npm run fuzz [-- --inputs N --targets kad,gossip --seed S --api-requests M]`: N inputs
 * (default 1,000,000) per parser of outside input (src/testing/fuzz-targets.ts), from a seed
 * that replays them; then M requests (default 20,000; 0 for none) to the HTTP API of an
 * offline node (src/testing/api-fuzz.ts).
 * Prints, per target, what was accepted and refused (by reason), the defects (anything thrown,
 * any unknown reason), the rate, and how the heap moved: sampled after a full GC at every
 * tenth of the run, its growth from the first sample to the last must stay under
 * HEAP_GROWTH_MAX_MB. Exits 1 on a defect or on growth past that. The last line is `RESULT {json}`.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { apiFuzzDaemon, fuzzApi } from '../src/testing/api-fuzz.ts'
import { fuzz } from '../src/testing/fuzz.ts'
import { fuzzTargets } from '../src/testing/fuzz-targets.ts'
import { garbageCollector } from '../src/node/heap-trimmer.ts'

const HEAP_GROWTH_MAX_MB = 16

const { values } = parseArgs({ options: {
  inputs: { type: 'string', default: '1000000' },
  targets: { type: 'string' },
  seed: { type: 'string', default: '1' },
  'api-requests': { type: 'string', default: '20000' },
} })
const inputs = Number(values.inputs)
if (!Number.isSafeInteger(inputs) || inputs < 10) throw new RangeError(`--inputs: an integer of at least 10, not ${values.inputs}`)
const gc = garbageCollector()
const wanted = values.targets?.split(',')
const targets = fuzzTargets().filter((target) => wanted === undefined || wanted.includes(target.name))
if (targets.length === 0) throw new Error(`--targets: none of ${values.targets} (known: ${fuzzTargets().map((target) => target.name).join(', ')})`)

const heapMb = (): number => {
  gc()
  return process.memoryUsage().heapUsed / 2 ** 20
}

console.log(`fuzz: ${inputs.toLocaleString('en')} inputs per target, seed ${values.seed}; node ${process.version}`)
console.log('target | inputs | accepted | refused | reasons seen | defects | inputs/s | heap growth MB')
let failed = false
const result = { inputsPerTarget: inputs, targets: [] as Array<{ name: string; inputs: number; defects: number; heapGrowthMb: number }>, apiRequests: 0, apiDefects: 0, failed: false }
for (const target of targets) {
  const samples: number[] = []
  const report = fuzz(target, { inputs, seed: values.seed, checkpointEvery: Math.floor(inputs / 10), onCheckpoint: () => samples.push(heapMb()) })
  const growth = samples.length > 1 ? samples.at(-1)! - samples[0]! : 0
  const refused = Object.values(report.rejections).reduce((sum, count) => sum + count, 0)
  const defects = report.inputs - report.accepted - refused
  console.log([target.name, report.inputs, report.accepted, refused, Object.keys(report.rejections).length, defects,
    Math.round(report.inputs / report.seconds), growth.toFixed(1)].join(' | '))
  for (const defect of report.defects) console.log(`  defect (${defect.kind}, ${defect.bytes} bytes, ${defect.input}): ${defect.error}`)
  if (defects > 0 || growth > HEAP_GROWTH_MAX_MB) failed = true
  result.targets.push({ name: target.name, inputs: report.inputs, defects, heapGrowthMb: growth })
  console.log(`  reasons: ${JSON.stringify(report.rejections)}`)
}
const apiRequests = Number(values['api-requests'])
if (apiRequests > 0) {
  const directory = await mkdtemp(join(tmpdir(), 'shoal-fuzz-api-'))
  const daemon = await apiFuzzDaemon(join(directory, 'repo'))
  try {
    const report = await fuzzApi(daemon.url, daemon.samples, apiRequests, values.seed)
    console.log(`HTTP API: ${report.requests} requests in ${report.seconds.toFixed(1)} s (${Math.round(report.requests / report.seconds)}/s); statuses ${JSON.stringify(report.statuses)}; error codes ${JSON.stringify(report.codes)}; defects ${report.defects.length}`)
    for (const defect of report.defects) console.log(`  defect: ${defect}`)
    if (report.defects.length > 0) failed = true
    result.apiRequests = report.requests
    result.apiDefects = report.defects.length
  } finally {
    await daemon.close()
    await rm(directory, { recursive: true, force: true })
  }
}
console.log(failed ? 'FAILED: defects, or heap growth over ' + HEAP_GROWTH_MAX_MB + ' MB' : `passed: no defects, heap growth under ${HEAP_GROWTH_MAX_MB} MB for every target`)
console.log(`RESULT ${JSON.stringify({ ...result, failed })}`)
process.exitCode = failed ? 1 : 0
