/**
 * The swarm scenarios (src/sim/scenarios/swarm.ts) over a sweep of swarm sizes, with the
 * figures side by side and the issue's targets: each run is `shoal sim <scenario> --peers N
 * --seed S --json` in a child process of its own (its own heap, as the CLI sizes it), one
 * after the other, and the table says which command produced each column. Then the growth
 * of p50/LB from the smallest N of at least 100 to the largest (target: at most 10%).
 *
 *   npm run bench:swarm-sim -- --peers 10,100,1000,10000 --scenarios swarm-flash,swarm-poisson --seed 1
 *
 * Wall times depend on what else runs on the machine: the 1-minute load average before and
 * after each run is printed with it. The last line is `RESULT {json}` with every run.
 */
import { execFileSync } from 'node:child_process'
import { loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'

interface Run {
  scenario: string
  peers: number
  seed: string
  command: string
  loadBefore: number
  loadAfter: number
  wallMs: number
  output: Record<string, unknown>
}

const SHOAL = fileURLToPath(new URL('../src/cli/shoal.js', import.meta.url))

function option(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`)
  return index >= 0 && index + 1 < process.argv.length ? process.argv[index + 1]! : fallback
}

const peerCounts = option('peers', '10,100,1000').split(',').map((text) => Number(text.trim()))
const scenarios = option('scenarios', 'swarm-flash,swarm-poisson,swarm-freeriders,swarm-strategic').split(',').map((text) => text.trim())
const seed = option('seed', '1')

const runs: Run[] = []
for (const scenario of scenarios) {
  for (const peers of peerCounts) {
    const command = `shoal sim ${scenario} --peers ${peers} --seed ${seed}`
    const loadBefore = loadavg()[0]!
    const startedAt = performance.now()
    const text = execFileSync(process.execPath, [SHOAL, 'sim', scenario, '--peers', String(peers), '--seed', seed, '--json'], { encoding: 'utf8', maxBuffer: 64 << 20 })
    const wallMs = performance.now() - startedAt
    const output = JSON.parse(text.trim().split('\n').at(-1)!) as Record<string, unknown>
    const run: Run = { scenario, peers, seed, command, loadBefore, loadAfter: loadavg()[0]!, wallMs, output }
    runs.push(run)
    console.log(`${command}: ${Math.round(wallMs / 1000)} s wall, load ${run.loadBefore.toFixed(1)} -> ${run.loadAfter.toFixed(1)}`)
  }
}

for (const scenario of scenarios) {
  const columns = runs.filter((run) => run.scenario === scenario)
  if (columns.length === 0) continue
  console.log(`\n## ${scenario}`)
  for (const run of columns) console.log(`  N=${run.peers}: ${run.command}  (${Math.round(run.wallMs / 1000)} s wall, load ${run.loadBefore.toFixed(1)}/${run.loadAfter.toFixed(1)})`)
  const names: string[] = ['events', 'wallMs', 'peakRssBytes', 'traceHash']
  for (const run of columns) for (const name of Object.keys(run.output.figures as object)) if (!names.includes(name)) names.push(name)
  const width = Math.max(...names.map((name) => name.length))
  console.log(`${''.padEnd(width)}  ${columns.map((run) => `N=${run.peers}`.padStart(24)).join('')}`)
  for (const name of names) {
    const values = columns.map((run) => {
      const figures = run.output.figures as Record<string, unknown>
      const value = name in figures ? figures[name] : run.output[name]
      return String(value ?? '-').padStart(24)
    })
    console.log(`${name.padEnd(width)}  ${values.join('')}`)
  }
  // p50/LB from the smallest N >= 100 to the largest, for each capacity mix.
  const sized = columns.filter((run) => run.peers >= 100)
  if (sized.length >= 2) {
    const first = sized[0]!
    const last = sized.at(-1)!
    for (const key of Object.keys(first.output.figures as object).filter((name) => name.endsWith('p50OverBound'))) {
      const before = (first.output.figures as Record<string, number>)[key]!
      const after = (last.output.figures as Record<string, number>)[key]!
      const growth = after / before - 1
      console.log(`growth ${key} N=${first.peers} -> N=${last.peers}: ${before} -> ${after}: ${(100 * growth).toFixed(1)}% <= 10%: ${growth <= 0.1 ? 'met' : 'MISSED'}`)
    }
  }
}
console.log(`RESULT ${JSON.stringify(runs)}`)
