/**
 * The registry of named scenarios that `shoal sim <name>` runs and `shoal sim --list`
 * shows. Add a scenario by writing a NamedScenario in this folder and listing it here.
 */
import { DHT_CHURN_HEAVY_SCENARIO, DHT_CHURN_SCENARIO, DHT_ECLIPSE_SCENARIO, DHT_LOOKUP_SCENARIO } from './dht.ts'
import { GOSSIP_ATTACK_SCENARIO, GOSSIP_IDONTWANT_SCENARIO, GOSSIP_SPREAD_SCENARIO } from './gossip.ts'
import { MEMBERSHIP_FLASH_CROWD_SCENARIO, MEMBERSHIP_SCENARIO } from './membership.ts'
import { MEMBERSHIP_PARTITION_SCENARIO } from './membership-partition.ts'
import { SWARM_FLASH_SCENARIO, SWARM_FREERIDERS_SCENARIO, SWARM_POISONING_COVERT_SCENARIO, SWARM_POISONING_SCENARIO, SWARM_POISONING_WHITEWASH_SCENARIO, SWARM_POISSON_SCENARIO, SWARM_STRATEGIC_SCENARIO } from './swarm.ts'
import type { NamedScenario } from './types.ts'

export type { Figure, NamedScenario, ScenarioReport, ScenarioRunOptions } from './types.ts'

export const SCENARIOS: readonly NamedScenario[] = [
  MEMBERSHIP_SCENARIO, MEMBERSHIP_PARTITION_SCENARIO, MEMBERSHIP_FLASH_CROWD_SCENARIO,
  DHT_LOOKUP_SCENARIO, DHT_CHURN_SCENARIO, DHT_CHURN_HEAVY_SCENARIO, DHT_ECLIPSE_SCENARIO,
  GOSSIP_SPREAD_SCENARIO, GOSSIP_IDONTWANT_SCENARIO, GOSSIP_ATTACK_SCENARIO,
  SWARM_FLASH_SCENARIO, SWARM_POISSON_SCENARIO, SWARM_FREERIDERS_SCENARIO, SWARM_STRATEGIC_SCENARIO, SWARM_POISONING_SCENARIO, SWARM_POISONING_COVERT_SCENARIO, SWARM_POISONING_WHITEWASH_SCENARIO,
]

export function findScenario(name: string): NamedScenario | undefined {
  return SCENARIOS.find((candidate) => candidate.name === name)
}
