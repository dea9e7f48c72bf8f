/**
 * Parsing of the addresses users type (config, flags, API arguments) into multiaddrs and
 * peer ids, with one-line errors that say what was wrong. Kept apart from network.ts so
 * that commands which only edit config do not load libp2p.
 */
import type { PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { ShoalError } from '../core/errors.ts'

/** Longer than any real address (or peer id): refused before the parser sees it. */
export const MULTIADDR_TEXT_LENGTH_MAX = 1_024

export function parseMultiaddr(text: string, what: string): Multiaddr {
  if (text.length > MULTIADDR_TEXT_LENGTH_MAX) throw new ShoalError('INVALID_ARGUMENT', `invalid ${what}: ${text.length} characters is longer than ${MULTIADDR_TEXT_LENGTH_MAX}`)
  try {
    return multiaddr(text)
  } catch (error) {
    throw new ShoalError('INVALID_ARGUMENT', `invalid ${what} '${text}': ${(error as Error).message}`)
  }
}

export function parsePeerId(text: string): PeerId {
  if (text.length > MULTIADDR_TEXT_LENGTH_MAX) throw new ShoalError('INVALID_ARGUMENT', `invalid peer id: ${text.length} characters is longer than ${MULTIADDR_TEXT_LENGTH_MAX}`)
  try {
    return peerIdFromString(text)
  } catch {
    throw new ShoalError('INVALID_ARGUMENT', `invalid peer id '${text}'`)
  }
}

/** A bootstrap address must name its peer: /ip4/.../tcp/4001/p2p/12D3KooW... */
export function parseBootstrapAddress(text: string): { peer: string; address: Multiaddr } {
  const address = parseMultiaddr(text, 'bootstrap address')
  const peer = address.getComponents().find((component) => component.name === 'p2p')?.value
  if (peer === undefined) throw new ShoalError('INVALID_ARGUMENT', `bootstrap address '${text}' must end in /p2p/<peer id>`)
  parsePeerId(peer)
  return { peer, address }
}
