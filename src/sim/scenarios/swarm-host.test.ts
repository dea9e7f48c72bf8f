/**
 * SwarmHost's store as it passes from one identity of a peer to the next (a whitewashing
 * poisoner keeps its disk). The rest of the host is covered by the swarm scenarios.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { Core } from '../../core/sans-io.ts'
import type { SwarmAction, SwarmEvent, SwarmInput } from '../../core/swarm/swarm.ts'
import { SwarmHost, virtualFile, type SwarmObserver } from './swarm-host.ts'

const idle: Core<SwarmInput, SwarmAction> = { handle: () => {}, poll: () => undefined, nextDeadline: () => undefined }
const observer: SwarmObserver = { sources: () => [], stored: () => {}, event: (_index: number, _event: SwarmEvent) => {}, received: () => {} }

test('a fresh identity takes over the store of the one before it, once, before it has a store of its own', () => {
  const file = virtualFile('adopt', 8, 1024)
  const seed = new SwarmHost(1, idle, file, observer, true)
  const empty = new SwarmHost(2, idle, file, observer, false)
  const fresh = new SwarmHost(3, idle, file, observer, false)
  fresh.adoptStoreOf(empty)
  assert.equal(fresh.heldCount, 0)
  assert.equal(fresh.complete, false)
  fresh.adoptStoreOf(seed)
  assert.equal(fresh.heldCount, 8)
  assert.ok(fresh.complete, 'the root and every leaf')
  assert.throws(() => fresh.adoptStoreOf(seed), /already has a store/)
})
