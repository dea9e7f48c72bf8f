/**
 * What the cores read from a peer's multiaddrs: its IP group for the DHT routing table's
 * diversity limits (libp2p kad-dht, after go-libp2p-kbucket's peerdiversity: an IPv4
 * address's /16, an IPv6 address's /32), and its IP for GossipSub's IP colocation score.
 * Loopback, private and link-local addresses count for nothing when they are exempt, so
 * that a local test network is not limited.
 */

/** The group of the first public address, the first address's group when none is public, or undefined when exempt. */
export function ipGroupOf(addresses: readonly string[], privateExempt: boolean): string | undefined {
  let fallback: string | undefined
  for (const address of addresses) {
    const group = groupOf(address)
    if (group === undefined) continue
    if (!group.private) return group.name
    fallback ??= group.name
  }
  return privateExempt ? undefined : fallback
}

/** The IP of the first public address, the first address's IP when none is public, or undefined when exempt. */
export function ipOf(addresses: readonly string[], privateExempt: boolean): string | undefined {
  let fallback: string | undefined
  for (const address of addresses) {
    const group = groupOf(address)
    if (group === undefined) continue
    if (!group.private) return group.ip
    fallback ??= group.ip
  }
  return privateExempt ? undefined : fallback
}

/** Whether a multiaddr starts with a public IP address (not loopback, private, link-local or unspecified). */
export function hasPublicIp(address: string): boolean {
  return groupOf(address)?.private === false && !/^\/ip[46]\/(0\.0\.0\.0|::)(\/|$)/.test(address)
}

function groupOf(address: string): { name: string; ip: string; private: boolean } | undefined {
  const ip4 = /^\/ip4\/(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\/|$)/.exec(address)
  if (ip4 !== null) {
    const [a, b] = [Number(ip4[1]), Number(ip4[2])]
    return { name: `ip4/${a}.${b}`, ip: `${a}.${b}.${ip4[3]}.${ip4[4]}`, private: isPrivateIp4(a, b) }
  }
  const ip6 = /^\/ip6\/([0-9a-fA-F:.]+)(?:\/|$)/.exec(address)
  if (ip6 !== null) {
    const groups = expandIp6(ip6[1]!)
    if (groups === undefined) return undefined
    return { name: `ip6/${groups[0]}:${groups[1]}`, ip: groups.map((group) => group.toString(16)).join(':'), private: isPrivateIp6(groups) }
  }
  return undefined
}

function isPrivateIp4(a: number, b: number): boolean {
  return a === 10 || a === 127 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) ||
    (a === 169 && b === 254) || (a === 100 && b >= 64 && b <= 127) || a === 0
}

function isPrivateIp6(groups: number[]): boolean {
  const first = groups[0]!
  const loopback = groups.slice(0, 7).every((group) => group === 0) && groups[7] === 1
  return loopback || (first & 0xfe00) === 0xfc00 || (first & 0xffc0) === 0xfe80
}

/** The eight 16-bit groups of an IPv6 address, or undefined if it is not one. */
function expandIp6(text: string): number[] | undefined {
  const halves = text.split('::')
  if (halves.length > 2) return undefined
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((group) => Number.parseInt(group, 16)))
  const head = parse(halves[0]!)
  const tail = halves.length === 2 ? parse(halves[1]!) : []
  const missing = 8 - head.length - tail.length
  if (missing < 0 || (halves.length === 1 && missing !== 0)) return undefined
  const groups = [...head, ...new Array<number>(missing).fill(0), ...tail]
  return groups.every((group) => Number.isInteger(group) && group >= 0 && group <= 0xffff) ? groups : undefined
}
