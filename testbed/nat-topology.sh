#!/usr/bin/env bash
# nat-topology.sh - a relay on a "public" segment and two peers, each behind its own router
# whose NAT behaviour is chosen per side. Built from network namespaces, veth and nftables;
# nothing leaves the namespaces (np-pub has no link to the host). Extends the team's shared
# testbed (../shared/testbeds/nat-topology.sh) with per-side modes and the symmetric and
# address-restricted cases.
#
#                         namespace np-pub  ("the internet", bridge br0, PUB_NET.254/24)
#            +---------------------+----------------------+
#     np-relay  PUB_NET.10   np-nat1 wan PUB_NET.21   np-nat2 wan PUB_NET.22
#                            np-nat1 lan              np-nat2 lan
#                                  |                      |
#                            np-peer1                np-peer2
#
# Behind a NAT, LAN i is 10.0.i.0/24 and the peer is 10.0.i.2. A "public" side routes
# without NAT: LAN i is PUB_PREFIX.i.0/24, the peer is PUB_PREFIX.i.2 and np-pub routes to it.
#
# Modes (RFC 4787 terms; Linux masquerade preserves the source port unless it collides):
#   public          no NAT, no filtering.
#   fullcone        endpoint-independent mapping and filtering: every source port a LAN host
#                   sent from is DNAT'ed back to it, from anyone (nftables set, 5 min).
#   restricted      endpoint-independent mapping, address-dependent filtering: inbound to a
#                   mapped port is let in from any port of an address the host sent to.
#   portrestricted  endpoint-independent mapping, address-and-port-dependent filtering (plain
#                   conntrack masquerade).
#   symmetric       endpoint-dependent mapping (a random external port per destination,
#                   masquerade random) and address-and-port-dependent filtering.
#
# Needs root (CAP_NET_ADMIN + CAP_SYS_ADMIN), iproute2 and nftables.
# Usage:
#   testbed/nat-topology.sh up MODE1 [MODE2]   # MODE2 defaults to MODE1
#   testbed/nat-topology.sh peer-address I     # the address peer I listens on
#   testbed/nat-topology.sh down
#   ip netns exec np-peer1 <cmd>               # run something on peer 1
set -euo pipefail

PUB_NET=${PUB_NET:-11.0.0}     # libp2p treats TEST-NET and 100.64/10 as private: see the shared script
PUB_PREFIX=${PUB_PREFIX:-11.0} # public LANs: PUB_PREFIX.1.0/24 and PUB_PREFIX.2.0/24
NS_ALL="np-pub np-relay np-nat1 np-nat2 np-peer1 np-peer2"
MODES="public fullcone restricted portrestricted symmetric"

x() { ip netns exec "$@"; }

lan_prefix() { # $1=i $2=mode
  if [ "$2" = public ]; then echo "$PUB_PREFIX.$1"; else echo "10.0.$1"; fi
}

router_rules() { # $1=i $2=mode
  local i=$1 mode=$2 lan host sets="" pre="" post="" fwd=""
  lan="$(lan_prefix "$i" "$mode").0/24"
  host="$(lan_prefix "$i" "$mode").2"
  case "$mode" in
    public)
      x np-nat$i nft -f - <<EOF
table ip natlab {
  chain forward { type filter hook forward priority filter; policy accept; }
}
EOF
      return ;;
    fullcone)
      sets="
  set udp_mapped { type inet_service; flags dynamic,timeout; timeout 5m; }
  set tcp_mapped { type inet_service; flags dynamic,timeout; timeout 5m; }"
      fwd="
    iifname \"lan\" meta l4proto udp update @udp_mapped { udp sport }
    iifname \"lan\" meta l4proto tcp update @tcp_mapped { tcp sport }"
      pre="
    iifname \"wan\" udp dport @udp_mapped dnat to $host
    iifname \"wan\" tcp dport @tcp_mapped dnat to $host"
      post="masquerade" ;;
    restricted)
      sets="
  set udp_contacted { type ipv4_addr . inet_service; flags dynamic,timeout; timeout 5m; }
  set tcp_contacted { type ipv4_addr . inet_service; flags dynamic,timeout; timeout 5m; }"
      fwd="
    iifname \"lan\" meta l4proto udp update @udp_contacted { ip daddr . udp sport }
    iifname \"lan\" meta l4proto tcp update @tcp_contacted { ip daddr . tcp sport }"
      pre="
    iifname \"wan\" ip saddr . udp dport @udp_contacted dnat to $host
    iifname \"wan\" ip saddr . tcp dport @tcp_contacted dnat to $host"
      post="masquerade" ;;
    portrestricted) post="masquerade" ;;
    symmetric) post="masquerade random" ;;
    *) echo "unknown NAT mode '$mode' (expected one of: $MODES)" >&2; exit 2 ;;
  esac
  x np-nat$i nft -f - <<EOF
table ip natlab {
$sets
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;$pre
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "wan" ip saddr $lan $post
  }
  # A home router answers nothing unsolicited on its WAN. An unsolicited packet accepted
  # into the router's own input path would get a conntrack entry that collides with the
  # LAN host's later punch and makes masquerade pick another port.
  chain input {
    type filter hook input priority filter; policy accept;
    iifname "wan" ct state new drop
  }
  chain forward {
    type filter hook forward priority filter; policy drop;$fwd
    ct state established,related accept
    iifname "lan" oifname "wan" accept
    iifname "wan" oifname "lan" ct status dnat accept
  }
}
EOF
}

up() {
  local mode1=$1 mode2=${2:-$1}
  for mode in "$mode1" "$mode2"; do
    case " $MODES " in *" $mode "*) ;; *) echo "unknown NAT mode '$mode' (expected one of: $MODES)" >&2; exit 2 ;; esac
  done
  down >/dev/null
  for ns in $NS_ALL; do ip netns add "$ns"; x "$ns" ip link set lo up; done

  x np-pub ip link add br0 type bridge
  x np-pub ip link set br0 up
  x np-pub ip addr add "$PUB_NET.254/24" dev br0
  x np-pub sysctl -qw net.ipv4.ip_forward=1

  ip link add np-relay-e type veth peer name p-relay
  ip link set np-relay-e netns np-relay; ip link set p-relay netns np-pub
  x np-relay ip link set np-relay-e name eth0
  x np-relay ip addr add "$PUB_NET.10/24" dev eth0
  x np-relay ip link set eth0 up
  x np-relay ip route add default via "$PUB_NET.254"
  x np-pub ip link set p-relay master br0 up

  local i mode lan
  for i in 1 2; do
    if [ "$i" = 1 ]; then mode=$mode1; else mode=$mode2; fi
    lan=$(lan_prefix "$i" "$mode")
    ip link add np-n$i-wan type veth peer name p-nat$i
    ip link set np-n$i-wan netns np-nat$i; ip link set p-nat$i netns np-pub
    x np-pub ip link set p-nat$i master br0 up
    x np-nat$i ip link set np-n$i-wan name wan
    x np-nat$i ip addr add "$PUB_NET.2$i/24" dev wan
    x np-nat$i ip link set wan up
    x np-nat$i ip route add default via "$PUB_NET.254"

    ip link add np-n$i-lan type veth peer name np-p$i-eth
    ip link set np-n$i-lan netns np-nat$i; ip link set np-p$i-eth netns np-peer$i
    x np-nat$i ip link set np-n$i-lan name lan
    x np-nat$i ip addr add "$lan.1/24" dev lan
    x np-nat$i ip link set lan up
    x np-nat$i sysctl -qw net.ipv4.ip_forward=1
    x np-peer$i ip link set np-p$i-eth name eth0
    x np-peer$i ip addr add "$lan.2/24" dev eth0
    x np-peer$i ip link set eth0 up
    x np-peer$i ip route add default via "$lan.1"
    if [ "$mode" = public ]; then x np-pub ip route add "$lan.0/24" via "$PUB_NET.2$i"; fi

    router_rules "$i" "$mode"
  done
  echo "topology up: peer1 $mode1, peer2 $mode2 (public net $PUB_NET.0/24)"
}

down() {
  for ns in $NS_ALL; do ip netns del "$ns" 2>/dev/null || true; done
  for l in np-relay-e np-n1-wan np-n2-wan np-n1-lan np-n2-lan np-p1-eth np-p2-eth; do
    ip link del "$l" 2>/dev/null || true
  done
  echo "topology down"
}

peer_address() { # $1=i: read back what up() configured
  x np-peer"$1" ip -4 -o addr show dev eth0 | awk '{ split($4, a, "/"); print a[1] }'
}

case "${1:-}" in
  up) up "${2:?usage: $0 up MODE1 [MODE2]}" "${3:-}" ;;
  down) down ;;
  peer-address) peer_address "${2:?usage: $0 peer-address 1|2}" ;;
  *) echo "usage: $0 up MODE1 [MODE2] | peer-address I | down   (modes: $MODES)" >&2; exit 2 ;;
esac
