/**
 * Properties of the GossipSub codec over generated input. The seed is fixed so runs repeat;
 * a failure prints SEED=<n>, and SHOAL_SEED=<n> replays it (fast-check seeds are integers).
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import type { GossipControl } from '../core/gossip/messages.ts'
import { gossipRpc } from '../testing/wire-arbitraries.ts'
import { checkProperty, decodesOrRejects, mutatedFramesProperty } from '../testing/wire-properties.ts'
import { decodeGossip, encodeGossip, GOSSIP_WIRE_ERROR_CODES, gossipRpcSize } from './gossip.ts'

const check = (property: fc.IProperty<unknown>, numRuns?: number) => checkProperty('dist/src/wire/gossip.prop.test.js', property, numRuns)

const assertDecodesOrRejects = decodesOrRejects(decodeGossip, GOSSIP_WIRE_ERROR_CODES)

function isEmpty(control: GossipControl): boolean {
  return control.ihave.length + control.iwant.length + control.graft.length + control.prune.length + control.idontwant.length === 0
}

test('RPCs within the limits survive a round trip, and gossipRpcSize is their encoded size', () => {
  check(fc.property(gossipRpc, (original) => {
    const bytes = encodeGossip(original)
    assert.equal(gossipRpcSize(original), bytes.byteLength)
    // A control message with nothing in it is not sent.
    const { control: sent, ...rest } = original
    const expected = sent === undefined || isEmpty(sent) ? rest : original
    assert.deepEqual(decodeGossip(bytes), { ok: true, value: expected })
  }), 300)
})

test('random bytes are read or rejected with a known code, never thrown', () => {
  check(fc.property(fc.uint8Array({ maxLength: 512 }), assertDecodesOrRejects), 5_000)
})

test('valid frames with bytes changed, cut or appended are read or rejected, never thrown', () => {
  check(mutatedFramesProperty(gossipRpc, encodeGossip, assertDecodesOrRejects), 500)
})
