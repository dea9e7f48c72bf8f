/**
 * The poisoner's pattern (swarm-adversaries.ts): which of the blocks it sends each peer it
 * corrupts, and which peers it learns banned it; the whitewasher's identities and their bound.
 * Their effect on a swarm is measured by the swarm-poisoning scenarios and gates.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { Core, PeerId } from '../../core/sans-io.ts'
import type { BlockData, SwarmMessage } from '../../core/swarm/messages.ts'
import type { SwarmAction, SwarmInput } from '../../core/swarm/swarm.ts'
import { Poisoner, Whitewasher } from './swarm-adversaries.ts'

/** An inner core that sends the given peers a block each, in turn, `rounds` times, and says `have` to each before. */
function sender(peers: readonly PeerId[], rounds: number): Core<SwarmInput, SwarmAction> {
  const queue: SwarmAction[] = []
  for (let round = 0; round < rounds; round++) {
    for (const peer of peers) {
      queue.push({ type: 'send', to: peer, message: { type: 'have', root: 'root', blocks: [round] } as unknown as SwarmMessage })
      queue.push({ type: 'send', to: peer, message: { type: 'block', root: 'root', block: round, data: { byteLength: round } } as unknown as SwarmMessage })
    }
  }
  return { handle: () => {}, poll: () => queue.shift(), nextDeadline: () => undefined }
}

const A = 'a' as PeerId
const B = 'b' as PeerId
const tampered = (data: BlockData): BlockData => ({ byteLength: -1 - data.byteLength })

/** For each peer, the rounds whose block went out corrupt. */
function corruptRounds(poisoner: Poisoner): Map<PeerId, number[]> {
  const corrupt = new Map<PeerId, number[]>()
  for (let action = poisoner.poll(); action !== undefined; action = poisoner.poll()) {
    if (action.type !== 'send' || action.message.type !== 'block') continue
    const { byteLength } = action.message.data
    if (byteLength < 0) corrupt.set(action.to, [...(corrupt.get(action.to) ?? []), -1 - byteLength])
  }
  return corrupt
}

test('a plain poisoner corrupts every block and passes every other message through', () => {
  const poisoner = new Poisoner(sender([A], 3), tampered)
  const messages: string[] = []
  for (let action = poisoner.poll(); action !== undefined; action = poisoner.poll()) if (action.type === 'send') messages.push(`${action.message.type}:${action.message.type === 'block' ? action.message.data.byteLength : ''}`)
  assert.deepEqual(messages, ['have:', 'block:-1', 'have:', 'block:-2', 'have:', 'block:-3'])
  assert.equal(poisoner.blocksPoisoned, 3)
  assert.equal(poisoner.blocksTrue, 0)
})

test('a covert poisoner sends each peer its first blocks true, then corrupts the share asked for, evenly', () => {
  const poisoner = new Poisoner(sender([A, B], 12), tampered, { trueBlocksFirst: 4, corruptShare: 0.25 })
  const corrupt = corruptRounds(poisoner)
  assert.deepEqual(corrupt.get(A), [7, 11], 'blocks 0-3 true, then one in four')
  assert.deepEqual(corrupt.get(B), [7, 11], 'counted per peer')
  assert.equal(poisoner.blocksPoisoned, 4)
  assert.equal(poisoner.blocksTrue, 20)
  assert.throws(() => new Poisoner(sender([], 0), tampered, { trueBlocksFirst: 0, corruptShare: 0 }), /corruptShare 0/)
})

test('a poisoner counts as banned by a peer only a disconnect that follows a corrupt block to it, once', () => {
  const banned: PeerId[] = []
  const poisoner = new Poisoner(sender([A], 1), tampered, { trueBlocksFirst: 0, corruptShare: 1 }, { onBanned: (peer) => banned.push(peer) })
  corruptRounds(poisoner)
  poisoner.handle(10, { type: 'peer-disconnected', peer: B })
  assert.equal(poisoner.bannedByCount, 0, 'B was never sent a corrupt block: its leaving says nothing')
  poisoner.handle(20, { type: 'peer-disconnected', peer: A })
  poisoner.handle(30, { type: 'peer-disconnected', peer: A })
  assert.equal(poisoner.bannedByCount, 1)
  assert.deepEqual(banned, [A])
})

test('a covert poisoner is not banned by a peer it has sent only true blocks', () => {
  const poisoner = new Poisoner(sender([A], 4), tampered, { trueBlocksFirst: 4, corruptShare: 1 }, { onBanned: () => assert.fail('no ban') })
  corruptRounds(poisoner)
  poisoner.handle(10, { type: 'peer-disconnected', peer: A })
  assert.equal(poisoner.bannedByCount, 0)
})

test('a colluding poisoner sends its accomplices true blocks, and they do not count toward its pattern', () => {
  const poisoner = new Poisoner(sender([A, B], 3), tampered, { trueBlocksFirst: 1, corruptShare: 1 }, { isAccomplice: (peer) => peer === B })
  const corrupt = corruptRounds(poisoner)
  assert.deepEqual(corrupt.get(A), [1, 2])
  assert.equal(corrupt.get(B), undefined)
  assert.equal(poisoner.blocksTrue, 4)
})

test('a whitewasher takes a fresh identity after every bansPerIdentity bans, and keeps its last one', () => {
  const whitewasher = new Whitewasher({ identitiesMax: 3, bansPerIdentity: 2 })
  const decisions = Array.from({ length: 8 }, () => whitewasher.banned())
  assert.deepEqual(decisions, [false, true, false, true, false, false, false, false], 'two bans per identity, then the third identity stays')
  assert.equal(whitewasher.identitiesUsed, 3)
  assert.equal(whitewasher.rejoins, 2)
})

test('a whitewasher allowed one identity never comes back, and a bound below one is refused', () => {
  const whitewasher = new Whitewasher({ identitiesMax: 1, bansPerIdentity: 1 })
  assert.equal(whitewasher.banned(), false)
  assert.equal(whitewasher.identitiesUsed, 1)
  assert.throws(() => new Whitewasher({ identitiesMax: 0, bansPerIdentity: 1 }), /identitiesMax 0/)
  assert.throws(() => new Whitewasher({ identitiesMax: 2, bansPerIdentity: 0.5 }), /bansPerIdentity 0.5/)
})
