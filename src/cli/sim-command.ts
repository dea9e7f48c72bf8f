/**
 * `shoal sim`: runs a named scenario of the deterministic simulator (src/sim/scenarios)
 * and prints its figures, as a table or as one JSON object. The same seed gives the same
 * run, so the printed replay line reproduces it exactly. Registered by program.ts.
 */
import type { Command } from 'commander'
import { totalmem } from 'node:os'
import { extname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { ShoalError } from '../core/errors.ts'
import { findScenario, SCENARIOS, type Figure } from '../sim/scenarios/index.ts'
import { parseSeed } from '../sim/seed.ts'
import { parseInteger } from './integer-option.ts'
import type { SimWorkerData, SimWorkerResult } from './sim-worker.ts'

/** The simulator keeps per-peer state in arrays sized up front: refuse what would not fit in memory. */
const SIM_PEERS_MAX = 1_000_000
const SIM_OPERATIONS_MAX = 10_000_000
/** A day of virtual time; longer runs are better split into scenarios of their own. */
const SIM_DURATION_MS_MAX = 86_400_000

interface SimOptions {
  list?: boolean
  peers?: number
  seed: string
  ms?: number
  count?: number
  json?: boolean
}

export function registerSimCommand(program: Command, print: (line: string) => void, signal: AbortSignal): void {
  program
    .command('sim')
    .description('run a simulated network scenario (deterministic: the same seed replays the same run)')
    .argument('[scenario]', 'scenario name (see --list)')
    .option('--list', 'list the scenarios')
    .option('--peers <count>', 'number of simulated peers (default: the scenario\'s)', (text) => parseInteger(text, '--peers', 1, SIM_PEERS_MAX))
    .option('--seed <seed>', 'integer or text, e.g. a commit hash', '1')
    .option('--ms <milliseconds>', 'simulated duration (default: the scenario\'s)', (text) => parseInteger(text, '--ms', 1, SIM_DURATION_MS_MAX))
    .option('--count <operations>', 'operations the scenario measures, for those that take a count (e.g. dht-lookup lookups)', (text) => parseInteger(text, '--count', 1, SIM_OPERATIONS_MAX))
    .option('--json', 'print one JSON object')
    .action(async (name: string | undefined, options: SimOptions) => {
      if (options.list) {
        if (options.json) {
          print(JSON.stringify(SCENARIOS.map(({ name, description, defaults }) => ({ name, description, defaults }))))
          return
        }
        const nameWidth = Math.max(...SCENARIOS.map((scenario) => scenario.name.length))
        for (const scenario of SCENARIOS) print(`${scenario.name.padEnd(nameWidth)} ${scenario.description} (default ${scenario.defaults.peers} peers, ${scenario.defaults.ms} ms)`)
        return
      }
      if (name === undefined) throw new ShoalError('INVALID_ARGUMENT', 'name a scenario (shoal sim --list shows them)')
      const scenario = findScenario(name)
      if (scenario === undefined) throw new ShoalError('INVALID_ARGUMENT', `unknown scenario '${name}'; known: ${SCENARIOS.map((known) => known.name).join(', ')}`)
      let seed
      try {
        seed = parseSeed(options.seed)
      } catch {
        throw new ShoalError('INVALID_ARGUMENT', `bad --seed '${options.seed}': expected an integer or text`)
      }
      const peers = options.peers ?? scenario.defaults.peers
      const { report, wallMs } = await runInWorker({ scenario: scenario.name, options: { peers, seed, ms: options.ms ?? scenario.defaults.ms, count: options.count } }, signal)
      const summary: Record<string, Figure> = {
        scenario: scenario.name,
        peers,
        seed: String(seed),
        events: report.events,
        simulatedMs: report.simulatedMs,
        wallMs: Math.round(wallMs),
        eventsPerSecond: Math.round(report.events / Math.max(wallMs, 1e-3) * 1000),
        peakRssBytes: process.resourceUsage().maxRSS * 1024,
        traceHash: report.traceHash,
      }
      if (options.json) {
        print(JSON.stringify({ ...summary, figures: report.figures }))
        return
      }
      const rows = Object.entries({ ...summary, ...report.figures })
      const width = Math.max(...rows.map(([key]) => key.length))
      for (const [key, value] of rows) print(`${key.padEnd(width)}  ${value === null ? '-' : String(value)}`)
      print(`seed: ${String(seed)} (replay: shoal sim ${scenario.name} --seed ${String(seed)} --peers ${peers}${options.ms === undefined ? '' : ` --ms ${options.ms}`}${options.count === undefined ? '' : ` --count ${options.count}`})`)
    })
}

/**
 * A simulation's messages and lookups live for simulated seconds, and a young generation
 * this large lets most die there: on dht-lookup with 2,000 peers it ran 15–25 % faster than
 * 96 or 48 MiB, and 1,024 MiB was no faster.
 */
const SIM_YOUNG_GENERATION_MB = 384
/** Leaves a quarter of the machine's memory to everything else. */
const SIM_OLD_GENERATION_MB = Math.floor((totalmem() * 0.75) / 2 ** 20)

/** The scenario in a worker thread; SIGINT or SIGTERM (`signal`) ends the thread at once, so the process can exit. */
function runInWorker(data: SimWorkerData, signal: AbortSignal): Promise<SimWorkerResult> {
  signal.throwIfAborted()
  const worker = new Worker(new URL(`./sim-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url), {
    workerData: data,
    resourceLimits: { maxYoungGenerationSizeMb: SIM_YOUNG_GENERATION_MB, maxOldGenerationSizeMb: SIM_OLD_GENERATION_MB },
  })
  return new Promise((resolve, reject) => {
    worker.once('message', resolve)
    worker.once('error', (error: Error & { code?: string }) => {
      reject(error.code === 'ERR_WORKER_OUT_OF_MEMORY'
        ? new ShoalError('INVALID_ARGUMENT', `the simulation ran out of memory (${SIM_OLD_GENERATION_MB} MiB of heap); run it with fewer --peers or a smaller --count`)
        : error)
    })
    worker.once('exit', (code) => reject(signal.aborted ? signal.reason : new Error(`the simulation thread exited with status ${code} before reporting`)))
    signal.addEventListener('abort', () => void worker.terminate(), { once: true })
  })
}

