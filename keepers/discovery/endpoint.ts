/**
 * What a node may store as its endpoint: `http(s)://host:port`, nothing else. Validators and masters
 * connect to it, so an endpoint that carries a path, a query, a fragment or credentials is refused with
 * the reason rather than silently trimmed: the node's operator learns what to fix.
 */

export const MAX_ENDPOINT_LENGTH = 256;

export type EndpointCheck = { ok: true; endpoint: string } | { ok: false; reason: string };

// Scheme, authority (up to the first "/", "?" or "#") and whatever follows.
const SHAPE = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/([^/?#]*)(.*)$/s;
// Host (a bracketed IPv6 literal or a name / IPv4 without ":") and an explicit port.
const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+):([0-9]+)$/;

/** Checks `raw` and returns the normalised endpoint (`scheme://host:port`, host lowercased) or the reason it is refused. */
export function checkEndpoint(raw: unknown): EndpointCheck {
  const fail = (reason: string): EndpointCheck => ({ ok: false, reason: `endpoint ${reason}` });
  if (typeof raw !== "string") return fail("must be a string like http://host:port");
  if (raw.length === 0) return fail("must not be empty");
  if (raw.length > MAX_ENDPOINT_LENGTH) return fail(`is ${raw.length} characters long, at most ${MAX_ENDPOINT_LENGTH} are allowed`);
  // eslint-disable-next-line no-control-regex
  if (/[\s\u0000-\u001f\u007f]/.test(raw)) return fail("must not contain spaces or control characters");

  const shape = SHAPE.exec(raw);
  if (!shape) return fail("must start with http:// or https://");
  const [, scheme, authority, rest] = shape;
  const protocol = scheme.toLowerCase();
  if (protocol !== "http" && protocol !== "https") return fail(`must use http or https, not ${scheme}`);
  if (authority.includes("@")) return fail("must not carry credentials (user:password@)");
  if (authority === "") return fail("has no host");
  if (rest.includes("#")) return fail("must not have a fragment (#...)");
  if (rest.includes("?")) return fail("must not have a query (?...)");
  if (rest !== "" && rest !== "/") return fail(`must not have a path (got ${rest})`);

  const hostPort = HOST_PORT.exec(authority);
  if (!hostPort) {
    if (authority.startsWith(":")) return fail("has no host");
    if (/:[0-9]+$/.test(authority)) return fail(`has a malformed host (got ${authority.replace(/:[0-9]+$/, "")})`);
    return fail("must name its port explicitly (http://host:port)");
  }
  const port = Number(hostPort[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return fail(`port must be between 1 and 65535 (got ${hostPort[2]})`);

  let url: URL;
  try {
    url = new URL(`${protocol}://${hostPort[1]}:${port}/`);
  } catch {
    return fail(`host ${hostPort[1]} is not a valid host name or IP address`);
  }
  if (url.hostname === "") return fail("has no host");
  return { ok: true, endpoint: `${protocol}://${url.hostname}:${port}` };
}
