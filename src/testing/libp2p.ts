/**
 * Test support for net/: small libp2p nodes on 127.0.0.1 (TCP, Noise, Yamux, identify and
 * identify-push, as the host has),
 * with or without a Membership core driven by a ProtocolDriver, stopped when the test ends.
 */
import { noise } from '@chainsafe/libp2p-noise'
import { identify, identifyPush } from '@libp2p/identify'
import type { ComponentLogger, Libp2p, Logger } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { createLibp2p } from 'libp2p'
import { DEFAULT_MEMBERSHIP_CONFIG, Membership, type MembershipAction, type MembershipConfig, type MembershipEvent, type MembershipInput, type MembershipMessage } from '../core/membership/membership.ts'
import { Prng } from '../core/prng.ts'
import { asPeerId, type PeerId } from '../core/sans-io.ts'
import { ProtocolDriver, type ProtocolDriverLimits } from '../net/protocol-driver.ts'
import { CountingProtocolMetrics } from '../net/protocol-metrics.ts'
import { membershipCodec } from '../wire/membership.ts'
import { onCleanup, type HasAfter } from './temp.ts'


/** Fast membership timings so that tests see several rounds in a second. */
export const FAST_MEMBERSHIP: Omit<MembershipConfig, 'self'> = {
  ...DEFAULT_MEMBERSHIP_CONFIG,
  pingIntervalMs: 200,
  pingTimeoutMs: 2_000,
  exchangeIntervalMs: 300,
  exchangeAnswerIntervalMs: 100,
  dialBackoffMs: 300,
}

/** A libp2p node listening on 127.0.0.1; stopped at cleanup when `t` is given. */
export async function testLibp2p(t?: HasAfter): Promise<Libp2p> {
  const libp2p = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify(), identifyPush: identifyPush() },
  })
  if (t !== undefined) onCleanup(t, () => libp2p.stop())
  return libp2p
}

export interface MembershipNode {
  libp2p: Libp2p
  peer: PeerId
  addresses: string[]
  membership: Membership
  driver: ProtocolDriver<MembershipMessage, MembershipInput, MembershipAction>
  metrics: CountingProtocolMetrics
  events: MembershipEvent[]
}

export interface MembershipNodeOptions {
  config?: Partial<MembershipConfig>
  limits?: Partial<ProtocolDriverLimits>
}

/** A libp2p node running Membership over a started ProtocolDriver; both stop at cleanup. */
export async function membershipNode(t: HasAfter | undefined, options: MembershipNodeOptions = {}): Promise<MembershipNode> {
  const libp2p = await testLibp2p(t)
  const peer = asPeerId(libp2p.peerId.toString())
  const membership = new Membership({ ...FAST_MEMBERSHIP, ...options.config, self: peer }, Prng.fromSeed(`membership-${peer}`))
  const metrics = new CountingProtocolMetrics()
  const events: MembershipEvent[] = []
  const driver = new ProtocolDriver({
    libp2p,
    codec: membershipCodec,
    core: membership,
    now: () => performance.now(),
    onAction: (action) => events.push(action.event),
    metrics,
    ...(options.limits === undefined ? {} : { limits: options.limits }),
  })
  await driver.start()
  if (t !== undefined) onCleanup(t, () => driver.stop())
  const addresses = libp2p.getMultiaddrs().map((address) => address.toString())
  return { libp2p, peer, addresses, membership, driver, metrics, events }
}

/** Tells `from` about `to` as bootstrap would; the membership core dials it. */
export function introduce(from: MembershipNode, to: { peer: PeerId; addresses: string[] }): void {
  from.driver.input({ type: 'peer-discovered', peer: to.peer, addresses: to.addresses, source: 'bootstrap' })
}

/** Polls `condition` every `pollMs` until it holds, or fails with `message` after `ms`. */
export async function waitFor(condition: () => boolean, message: string | (() => string), ms = 5_000, pollMs = 20): Promise<void> {
  const deadline = Date.now() + ms
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms: ${typeof message === 'string' ? message : message()}`)
    await new Promise((resolve) => setTimeout(resolve, pollMs))
  }
}

/**
 * A silent logger for a stock reference node in interop tests: it records the error lines of
 * the components whose names start with `component` (e.g. libp2p:kad-dht), but for those
 * `ignored` says refuse nothing (timeouts a loaded machine causes).
 */
export function errorRecorder(errors: string[], component: string, ignored: (arg: unknown) => boolean = () => false): ComponentLogger {
  const logger = (name: string): Logger => Object.assign(() => {}, {
    enabled: false,
    trace: () => {},
    error: (formatter: unknown, ...args: unknown[]) => {
      if (name.startsWith(component) && !args.some(ignored)) errors.push(`${name}: ${String(formatter)} ${args.map(String).join(' ')}`)
    },
    newScope: (scope: string) => logger(`${name}:${scope}`),
  })
  return { forComponent: logger }
}
