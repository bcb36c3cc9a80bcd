import { describe, expect, it } from 'vitest';
import { compileTrust, forwardedFor, plainAddress } from '../../src/proxy/trust.js';

describe('trustProxy', () => {
  it('believes nobody by default: the client is the peer, whatever X-Forwarded-For claims', () => {
    expect(forwardedFor('10.0.0.9', '1.2.3.4', compileTrust(undefined))).toEqual({
      client: '10.0.0.9',
      chain: '10.0.0.9',
      peerTrusted: false,
    });
  });

  it('with a hop count, takes the entry that many hops from the right', () => {
    const trust = compileTrust(2);
    expect(forwardedFor('10.0.0.1', '6.6.6.6, 1.2.3.4, 10.0.0.2', trust)).toEqual({
      client: '1.2.3.4',
      chain: '6.6.6.6, 1.2.3.4, 10.0.0.2, 10.0.0.1',
      peerTrusted: true,
    });
  });

  it('with CIDRs, walks out from the peer while hops are listed proxies', () => {
    const trust = compileTrust(['10.0.0.0/8', '::1']);
    expect(forwardedFor('::ffff:10.1.2.3', ['7.7.7.7', '10.9.9.9'], trust).client).toBe('7.7.7.7');
    expect(forwardedFor('::1', '8.8.8.8', trust).client).toBe('8.8.8.8');
    expect(forwardedFor('192.168.1.1', '8.8.8.8', trust)).toMatchObject({
      client: '192.168.1.1',
      peerTrusted: false,
    });
  });

  it('with true, takes the leftmost entry', () => {
    expect(forwardedFor('10.0.0.1', '1.1.1.1, 2.2.2.2', compileTrust(true)).client).toBe('1.1.1.1');
  });

  it('strips the IPv4-mapped prefix', () => {
    expect(plainAddress('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(plainAddress('::ffff:abcd')).toBe('::ffff:abcd');
  });

  it.each([
    [-1, /integer >= 0/],
    ['10.0.0.0/8' as never, /boolean, a hop count or a list/],
    [['not an ip'], /is not an IP address or CIDR/],
    [['10.0.0.0/33'], /bad prefix length/],
    [[3 as never], /entries must be strings/],
  ])('refuses %j', (setting, message) => {
    expect(() => compileTrust(setting as never)).toThrow(message);
  });
});
