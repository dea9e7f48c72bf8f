/**
 * The thread `shoal sim` runs a scenario in, so that the simulation gets a heap sized for
 * it rather than the daemon's: the executable caps V8's young generation at 2 MiB for an
 * idle daemon's sake (see shoal.ts), which makes a simulation a quarter slower, and V8's
 * default old-space limit (4 GiB) is too small for 10,000 DHT peers.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { findScenario } from '../sim/scenarios/index.ts'
import type { ScenarioReport, ScenarioRunOptions } from '../sim/scenarios/types.ts'

export interface SimWorkerData {
  scenario: string
  options: ScenarioRunOptions
}

export interface SimWorkerResult {
  report: ScenarioReport
  wallMs: number
}

const { scenario, options } = workerData as SimWorkerData
const startedAt = performance.now()
const report = findScenario(scenario)!.run(options)
parentPort!.postMessage({ report, wallMs: performance.now() - startedAt } satisfies SimWorkerResult)
