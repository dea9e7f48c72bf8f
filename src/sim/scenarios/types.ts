/**
 * What a named scenario is to the registry and to `shoal sim`: a name, a description,
 * default knobs, and a run that returns figures. Implemented by each file in scenarios/.
 */
import type { Seed } from '../simulator.ts'
import { TraceHash } from '../trace-hash.ts'

export interface ScenarioRunOptions {
  peers: number
  seed: Seed
  /** Simulated duration in ms (each scenario has its own default). */
  ms?: number
  /** Operations a scenario measures (lookups, messages), where it has a count (`--count`). */
  count?: number
}

export type Figure = number | string | boolean | null

export interface ScenarioReport {
  events: number
  simulatedMs: number
  traceHash: string
  /** The scenario's own measurements, in the order they are worth reading. */
  figures: Record<string, Figure>
}

export interface NamedScenario {
  name: string
  description: string
  defaults: { peers: number; ms: number }
  run(options: ScenarioRunOptions): ScenarioReport
}

/** Events and simulated time summed over several runs; their trace hashes folded into one. */
export function combinedRuns(reports: readonly Omit<ScenarioReport, 'figures'>[]): Omit<ScenarioReport, 'figures'> {
  const trace = new TraceHash()
  for (const report of reports) {
    for (let start = 0; start < report.traceHash.length; start += 8) trace.word(Number.parseInt(report.traceHash.slice(start, start + 8), 16) | 0)
  }
  return {
    events: reports.reduce((sum, report) => sum + report.events, 0),
    simulatedMs: reports.reduce((sum, report) => sum + report.simulatedMs, 0),
    traceHash: trace.hex(),
  }
}
