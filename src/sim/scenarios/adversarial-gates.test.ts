import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ADVERSARIAL_GATES, missedThresholds, type GateThreshold } from './adversarial-gates.ts'
import { findScenario } from './index.ts'

const threshold = (comparison: GateThreshold['comparison'], bound: number): GateThreshold => ({ figure: 'x', comparison, bound, why: '' })

test('a threshold is missed by a value on the wrong side of its bound, and met on the right side or at it when inclusive', () => {
  assert.deepEqual(missedThresholds({ x: 0.97 }, [threshold('>=', 0.98)]), ['x = 0.97, wanted >= 0.98'])
  assert.deepEqual(missedThresholds({ x: 0.98 }, [threshold('>=', 0.98), threshold('<=', 0.98), threshold('==', 0.98)]), [])
  assert.deepEqual(missedThresholds({ x: 0.98 }, [threshold('>', 0.98), threshold('<', 0.98)]), ['x = 0.98, wanted > 0.98', 'x = 0.98, wanted < 0.98'])
})

test('a figure that is missing or not a number misses its threshold', () => {
  assert.deepEqual(missedThresholds({}, [threshold('>=', 0)]), ['x = missing, wanted >= 0'])
  assert.deepEqual(missedThresholds({ x: null }, [threshold('>=', 0)]), ['x = missing, wanted >= 0'])
  assert.deepEqual(missedThresholds({ x: '1' }, [threshold('>=', 0)]), ['x = 1, wanted >= 0'])
})

test('gates have distinct names, and each holds at least one threshold, each with its reason', () => {
  assert.equal(new Set(ADVERSARIAL_GATES.map((gate) => gate.name)).size, ADVERSARIAL_GATES.length)
  for (const gate of ADVERSARIAL_GATES) {
    assert.ok(gate.thresholds.length > 0, gate.name)
    for (const { figure, why } of gate.thresholds) assert.ok(why.length > 0, `${gate.name}: ${figure} has no reason`)
  }
})

test('each gate is the short version of a scenario that `shoal sim` runs', () => {
  for (const gate of ADVERSARIAL_GATES) assert.ok(findScenario(gate.scenario) !== undefined, `${gate.name}: no scenario ${gate.scenario}`)
})
