/**
 * Adversaries among honest membership peers: a silent peer is detected and dropped by
 * its neighbours (and nobody honest is accused); a Sybil exchanger poisons address
 * books, which costs honest peers failed dials but does not split the overlay.
 */
import { test } from 'node:test'
import { membershipScenario, degreeReachedFraction } from '../scenarios/membership.ts'
import { seedFromEnvironment } from '../seed.ts'
import { SilentPeer, SybilExchanger } from './membership-adversaries.ts'

const seed = seedFromEnvironment(3n)

test('peers that never answer pings are declared dead by their neighbours, honest ones never', () => {
  const silent = new Set([10, 11, 12])
  const { t, emits } = membershipScenario(seed, { peers: 100, sessionMeanMs: Infinity }, {
    adversaryFor: (context, config) => (silent.has(context.index) ? new SilentPeer(config, context.prng) : undefined),
  })
  t.run({ ms: 90_000 })
  for (const index of silent) {
    t.check((emits.deadReportsAbout.get(t.sim.idOf(index)) ?? 0) > 0, `silent peer ${index} was never declared dead`)
  }
  const accusedHonest = [...emits.deadReportsAbout.keys()].filter((id) => !silent.has(t.sim.indexOf(id)!))
  t.check(accusedHonest.length === 0, `honest peers declared dead: ${accusedHonest.join(', ')}`)
})

test('Sybil ids in peer exchange cost honest peers dials but do not split the overlay', () => {
  const sybils = new Map<number, SybilExchanger>()
  const { t } = membershipScenario(seed, { peers: 200, sessionMeanMs: Infinity }, {
    adversaryFor: (context, config) => {
      // Bootstrap peer 1 is one of them: newcomers ask their first neighbour for peers.
      if (context.index !== 1 && context.index % 20 !== 7) return undefined
      const sybil = new SybilExchanger(config, context.prng)
      sybils.set(context.index, sybil)
      return sybil
    },
  })
  t.run({ ms: 120_000 })
  const given = [...sybils.values()].reduce((total, sybil) => total + sybil.sybilIdsGiven, 0)
  t.check(given > 0, 'the Sybils were never asked for peers')
  t.check(t.sim.counters.dialsToUnknownPeer > 0, 'no honest peer dialled a Sybil id')
  t.check(t.largestComponentFraction() === 1, `overlay split: ${t.largestComponentFraction()}`)
  t.check(degreeReachedFraction(t, 8) >= 0.95, `only ${degreeReachedFraction(t, 8)} at the degree target`)
})
