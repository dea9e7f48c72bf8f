/**
 * What a named scenario is to the registry and to `shoal sim`: a name, a description,
 * default knobs, and a run that returns figures. Implemented by each file in scenarios/.
 */
import type { Seed } from '../simulator.ts'

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
