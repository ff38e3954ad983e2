import { defineErrors } from "#common/errors.ts";
import { commonErrors } from "#common/http/common-errors.ts";

/**
 * Every error http-utility answers, each declared once: status, stable code, message, headers, and the
 * line the OpenAPI document lists it with (a route names the entries it may throw in its `errors`).
 * Handlers throw `errors.unknownApp(name)`, never an HttpError of their own. The entries of the common
 * layer (validation, body parsers, database, rate limits) are spread in, so that this one list holds
 * every code the API can answer. A code may have several entries (`forbidden` for different reasons, or
 * `unknown_app` at the status each API has always used), never one entry two meanings.
 */

const retryAfter = (s: number) => ({ "retry-after": String(s) });
const REGISTER = "POST /api/v1/users";
const BASIC_REALM = 'Basic realm="xmpp-sidecars", charset="UTF-8"';
const mib = (bytes: number) => {
  const v = bytes / (1024 * 1024);
  return v >= 1 ? `${Number.isInteger(v) ? v : v.toFixed(1)} MiB` : `${Math.round(bytes / 1024)} KiB`;
};

export const errors = {
  ...commonErrors,
  ...defineErrors({
    // ---- who is calling (callers.ts), and the proxy in front (app.ts) ---------------------------------------
    invalidCredentials: {
      status: 401,
      code: "invalid_credentials",
      description: "no, malformed or wrong HTTP Basic credentials; comes with `WWW-Authenticate: Basic`",
      message: "Send HTTP Basic credentials: your JID (node@domain) and XMPP password.",
      headers: { "www-authenticate": BASIC_REALM },
    },
    // ---- app sessions (sessions/): bearer access tokens (RFC 6750 §3) and refresh tokens ------------------
    basicAuthDisabled: {
      status: 401,
      code: "basic_auth_disabled",
      description:
        "HTTP Basic on the app API is switched off for this domain (`domains.<d>.appBasicAuth`): log in with `POST /api/v1/sessions`",
      message:
        "HTTP Basic is switched off for your domain: log in once with POST /api/v1/sessions (your JID and password in the body) and send its access token as `Authorization: Bearer <token>`.",
      headers: { "www-authenticate": `Bearer realm="xmpp-sidecars"` },
    },
    invalidAccessToken: {
      status: 401,
      code: "invalid_access_token",
      description:
        "a bearer access token that is malformed, tampered with, or signed with a key that is gone: log in again",
      message: "This access token is not valid: log in again with POST /api/v1/sessions.",
      headers: {
        "www-authenticate": `Bearer realm="xmpp-sidecars", error="invalid_token", error_description="invalid access token"`,
      },
    },
    accessTokenExpired: {
      status: 401,
      code: "access_token_expired",
      description: "the access token has expired: get the next with `POST /api/v1/sessions/refresh`",
      message:
        "This access token has expired: get a new one with POST /api/v1/sessions/refresh and your refresh token.",
      headers: {
        "www-authenticate": `Bearer realm="xmpp-sidecars", error="invalid_token", error_description="access token expired"`,
      },
    },
    sessionRevoked: {
      status: 401,
      code: "session_revoked",
      description:
        "the access token's session has ended (logout, password change, disabled account, a reused refresh token): log in again",
      message:
        "This session has ended (logged out, password changed or revoked): log in again with POST /api/v1/sessions.",
      headers: {
        "www-authenticate": `Bearer realm="xmpp-sidecars", error="invalid_token", error_description="session ended"`,
      },
    },
    invalidRefreshToken: {
      status: 401,
      code: "invalid_refresh_token",
      description: "an unknown refresh token, or its session has expired or ended: log in again",
      message: (why: string) => `This refresh token ${why}: log in again with POST /api/v1/sessions.`,
    },
    refreshTokenReused: {
      status: 401,
      code: "refresh_token_reused",
      description:
        "a refresh token that had been used already (a copy of it): its whole session is revoked now; log in again",
      message:
        "This refresh token had been used already, so it may have been copied: its session is revoked. Log in again with POST /api/v1/sessions.",
    },
    noSession: {
      status: 404,
      code: "not_found",
      description: "no such live session among the caller's own",
      message: "No such session among yours: list them with GET /api/v1/sessions.",
    },
    invalidAppVersion: {
      status: 400,
      code: "invalid_app_version",
      description: "`X-App-Version` is not a version",
      message: (version: string) =>
        `X-App-Version ${JSON.stringify(version.slice(0, 60))} is not a version: send dotted numbers (1.10.2), 2.0.0-beta or a build number.`,
    },
    legacyDomainRequired: {
      status: 400,
      code: "legacy_domain_required",
      description:
        "a call without credentials under legacy compatibility, for an app whose compatibility covers several domains, without `domain`",
      message: (app: string, domains: readonly string[]) =>
        `${app} takes legacy calls in ${domains.join(", ")}: send \`domain\`, or log in with HTTP Basic (your JID and XMPP password).`,
    },
    // RFC 6750 §3: no error code when no key was sent, invalid_token for a key we do not know
    invalidApiKey: {
      status: 401,
      code: "invalid_api_key",
      description: "no or unknown Bearer API key; comes with `WWW-Authenticate: Bearer`",
      message: "Send a valid API key as `Authorization: Bearer <key>`.",
      headers: (presented: boolean) => ({
        "www-authenticate": `Bearer realm="xmpp-sidecars"${presented ? ', error="invalid_token"' : ""}`,
      }),
    },
    insufficientScope: {
      status: 403,
      code: "insufficient_scope",
      description: "the API key lacks the scope this operation needs",
      message: (scope: string) => `This API key lacks the scope "${scope}"; ask for a key that has it.`,
      headers: (scope: string) => ({
        "www-authenticate": `Bearer realm="xmpp-sidecars", error="insufficient_scope", scope="${scope}"`,
      }),
    },
    tooManyFailures: {
      status: 429,
      code: "too_many_failures",
      description:
        "this client address gave wrong passwords too often (for this JID, or for many); retry after `Retry-After`; other addresses are not affected",
      message: (retryAfterS: number) =>
        `Too many wrong passwords from your address; retry in ${retryAfterS} s, or from another network.`,
      headers: (retryAfterS: number) => retryAfter(retryAfterS),
    },
    authUnavailable: {
      status: 503,
      code: "auth_unavailable",
      description: "credentials cannot be checked right now; retry after `Retry-After`",
      message: "Credentials cannot be checked right now; retry in a few seconds.",
      headers: retryAfter(5),
    },
    missingForwardedFor: {
      status: 400,
      code: "missing_forwarded_for",
      description: "the request came through a trusted proxy that did not append X-Forwarded-For",
      message:
        "This request came through a trusted proxy (services.httpUtility.trustProxy) without X-Forwarded-For: the proxy must append the client's address (nginx: proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; see docs/operations.md).",
    },

    // ---- app-version --------------------------------------------------------------------------------------
    appNameRequired: {
      status: 400,
      code: "app_name_required",
      description: "no `appName`, and no default app is configured (`apps.<name>.default`)",
      message: (known: readonly string[]) =>
        known.length > 0
          ? `Send appName, one of ${known.join(", ")}; or the operator marks one app default (apps.<name>.default) for apps that send none.`
          : "No app is configured: the operator adds one under apps in the config.",
    },
    unknownApp: {
      status: 404,
      code: "unknown_app",
      description: "no app of that name is configured",
      message: (appName: string) =>
        `No app "${appName}" is configured: check appName (names are case-sensitive).`,
    },
    unknownPlatform: {
      status: 404,
      code: "unknown_platform",
      description: "no entry for the platform and no `default` (the message lists the platforms)",
      message: (appName: string, known: readonly string[]) =>
        known.length > 0
          ? `"${appName}" has no minimum version for this platform and no default: send platform as one of ${known.join(", ")}.`
          : `"${appName}" has no minimum version configured for any platform.`,
    },

    // ---- locations ----------------------------------------------------------------------------------------
    msisdnNotYours: {
      status: 403,
      code: "forbidden",
      description: "an app user naming another user's msisdn; nothing was stored or read",
      message: (msisdn: string) =>
        `msisdn ${msisdn} is not yours: report and read the locations of your own account (the user part of your JID) only.`,
    },
    locationsOfOtherDomain: {
      status: 403,
      code: "forbidden",
      description: "an app user asking for the locations of another domain",
      message: "You may read the locations of your own domain only: drop ?domain=.",
    },
    noLocations: {
      status: 404,
      code: "not_found",
      description: "no location stored for that msisdn (an app user's own empty history is an empty page)",
      message: (msisdn: string, domain: string | undefined) =>
        `No locations are stored for ${msisdn}${domain ? ` in ${domain}` : ""}: check the msisdn${domain ? " and the domain" : ""}.`,
    },
    ambiguousMsisdn: {
      status: 400,
      code: "ambiguous_msisdn",
      description: "the msisdn has locations in several domains: add `domain`",
      message: (msisdn: string, domains: readonly string[]) =>
        `${msisdn} has locations in several domains (${domains.join(", ")}): add ?domain= naming one.`,
    },

    // ---- registration -------------------------------------------------------------------------------------
    unknownDomain: {
      status: 404,
      code: "unknown_domain",
      description: "no such XMPP domain",
      message: (domain: string) => `No XMPP domain "${domain}" is served here: check domain.`,
    },
    registrationDisabled: {
      status: 400,
      code: "registration_disabled",
      description: "the domain does not accept registration",
      message: (domain: string) => `The domain "${domain}" does not accept registration by phone number.`,
    },
    noRegistration: {
      status: 400,
      code: "registration_disabled",
      description: "no domain of this server accepts registration",
      message: "No domain accepts registration by phone number here.",
    },
    unknownRegistrationApp: {
      status: 400,
      code: "unknown_app",
      description: "appName is not configured",
      message: (appName: string) =>
        `No app "${appName}" is configured: check appName (names are case-sensitive).`,
    },
    appVersionTooOld: {
      status: 426,
      code: "app_version_too_old",
      description: "the app must be updated to `minimumVersion` or later",
      message: (appName: string, version: string, minimum: string) =>
        `${appName} ${version} is too old: update to ${minimum} or later.`,
      details: (_appName: string, _version: string, minimum: string) => ({ minimumVersion: minimum }),
    },
    invalidNumber: {
      status: 400,
      code: "invalid_number",
      description: "not a phone number in international format",
      message: (problem: string) => problem,
    },
    countryNotAllowed: {
      status: 400,
      code: "country_not_allowed",
      description: "the domain does not accept numbers of that country",
      message: (country: string | undefined, domain: string, allowed: readonly string[]) =>
        `node: numbers of ${country ?? "that calling code"} cannot register in "${domain}" (allowed: ${allowed.join(", ")}).`,
    },
    resendTooSoon: {
      status: 429,
      code: "resend_too_soon",
      description: "a code went out a moment ago; retry after `Retry-After`",
      message: (s: number) =>
        `A code was sent to this number a moment ago: enter it, or ask for another one in ${s} s.`,
      headers: (s: number) => retryAfter(s),
    },
    tooManyCodes: {
      status: 429,
      code: "too_many_codes",
      description: "the session has had all its codes; retry after `Retry-After`",
      message: (s: number) =>
        `No more codes for this number now: enter the last one received, or ask again in ${s} s.`,
      headers: (s: number) => retryAfter(s),
    },
    smsBudgetExhausted: {
      status: 503,
      code: "sms_budget_exhausted",
      description:
        "the daily SMS budget (all numbers, or the numbers of this calling code) is spent; retry after `Retry-After`",
      message: (scope: "global" | "prefix", prefix: string, s: number) =>
        `No registration codes can be sent ${scope === "global" ? "" : `to ${prefix} numbers `}right now: retry in ${s} s.`,
      headers: (_scope: "global" | "prefix", _prefix: string, s: number) => retryAfter(s),
    },
    smsFailed: {
      status: 502,
      code: "sms_failed",
      description: "the SMS provider did not take the message; nothing was counted, retry",
      message: "The SMS could not be sent; retry in a minute.",
      headers: retryAfter(60),
    },
    registrationConflict: {
      status: 409,
      code: "registration_conflict",
      description: "another request for the number got in the way; ask again",
      message: "Another request for this number got in the way; ask for a new code.",
    },
    noChallenge: {
      status: 404,
      code: "no_challenge",
      description: "no code was sent to this number in this domain",
      message: `No code was sent to this number in this domain: ask for one first (${REGISTER}).`,
    },
    challengeExpired: {
      status: 410,
      code: "challenge_expired",
      description: "the code has expired: ask for a new one",
      message: `The code has expired: ask for a new one (${REGISTER}).`,
    },
    codeUsed: {
      status: 410,
      code: "code_used",
      description: "the code has been used already: ask for a new one",
      message: `This code has been used already and works only once: ask for a new code (${REGISTER}).`,
    },
    wrongCode: {
      status: 400,
      code: "wrong_code",
      description: "a wrong code; the message says how many attempts are left",
      message: (left: number) =>
        `challengecode: wrong code; ${left} attempt${left === 1 ? "" : "s"} left before it stops working.`,
    },
    tooManyAttempts: {
      status: 429,
      code: "too_many_attempts",
      description: "too many wrong codes: the code no longer works; ask for a new one after `Retry-After`",
      message: (s: number) =>
        `Too many wrong codes: this code no longer works. Request a new code (${REGISTER}) in ${s} s.`,
      headers: (s: number) => retryAfter(s),
    },
    accountDisabled: {
      status: 403,
      code: "account_disabled",
      description: "the account is disabled",
      message: "This account is disabled; contact the service's support.",
    },

    // ---- push: devices ------------------------------------------------------------------------------------
    nodeNotYours: {
      status: 403,
      code: "forbidden",
      description: "a node that is not the caller's own",
      message: (node: string) =>
        `node ${node} is not yours: you can only register your own devices (node is the user part of your JID).`,
    },
    domainNotYours: {
      status: 403,
      code: "forbidden",
      description: "a domain that is not the caller's own",
      message: (domain: string) =>
        `domain ${domain} is not yours: you can subscribe in your own domain only (the domain of your JID).`,
    },
    keyDomainOnly: {
      status: 403,
      code: "forbidden",
      description: "a domain other than the one the API key is limited to",
      message: (domain: string, keyDomain: string) =>
        `domain ${domain} is not this key's: it acts in ${keyDomain} only (\`services.httpUtility.apiKeys.<name>.domain\`).`,
    },
    noPushApp: {
      status: 422,
      code: "no_app",
      description: "no `app` sent and none configured for the domain",
      message: (domain: string) =>
        `No app is configured for ${domain}: send \`app\`, or ask the operator to set push.domains."${domain}".app in the config.`,
    },
    unknownPushApp: {
      status: 422,
      code: "unknown_app",
      description: "the app has no push credentials here",
      message: (app: string) =>
        `The app "${app}" has no push credentials here: send one of the configured apps, or ask the operator to add push.apps."${app}".`,
    },
    // says neither whose the token is nor when it was registered: only what the caller can do
    tokenInUse: {
      status: 409,
      code: "token_in_use",
      description: "the device token is registered to another account",
      message: (moveAfterDays: number) =>
        `This device token is registered to another account. Send the deviceSecret this app install registered it with, or register it again once that registration is ${moveAfterDays} days old without renewal.`,
    },
    noDevice: {
      status: 404,
      code: "not_found",
      description: "no such token among the caller's devices",
      message: "No such token among your devices: register it with store_token first.",
    },

    // ---- push: sending ------------------------------------------------------------------------------------
    noTokens: {
      status: 404,
      code: "no_tokens",
      description: "the user has no device registered (with that token)",
      message: (node: string, domain: string, token: string | undefined) =>
        token
          ? `${node}@${domain} has no device with that token: check the token, or leave it out to push to every device.`
          : `${node}@${domain} has no device registered for push (store_token).`,
    },
    noNotification: {
      status: 404,
      code: "not_found",
      description: "no such notification of the caller's",
      message: "No such notification of yours: check the id (the data's notificationId).",
    },
    noBroadcast: {
      status: 404,
      code: "not_found",
      description: "no such broadcast",
      message: "No such broadcast: check the id.",
    },
    noOrigin: {
      status: 409,
      code: "no_origin",
      description: "the notification was sent without callbackUrl or buddy: nowhere to relay to",
      message: "This notification was sent without callbackUrl or buddy: there is nowhere to relay to.",
    },
    forbiddenCallback: {
      status: 400,
      code: "forbidden_callback",
      description: "a callbackUrl whose host is not allowed (docs/security.md)",
      message: (why: string) => `callbackUrl: ${why} (docs/security.md).`,
    },

    // ---- push: what MongooseIM calls ----------------------------------------------------------------------
    forbiddenAddress: {
      status: 403,
      code: "forbidden_address",
      description:
        "a connection from neither loopback nor `push.hooks.allow` (its own address: X-Forwarded-For never counts)",
      message: (ip: string | undefined) =>
        `${ip ?? "this address"} may not call MongooseIM's endpoints: add it to push.hooks.allow (loopback always may).`,
    },

    // ---- attachments --------------------------------------------------------------------------------------
    multipartRequired: {
      status: 415,
      code: "multipart_required",
      description: "an upload that is not multipart/form-data",
      message: "Uploads are multipart/form-data with the file(s) in the field `attachments`.",
    },
    invalidMultipart: {
      status: 400,
      code: "invalid_multipart",
      description: "a multipart body that cannot be read",
      message: (problem: string) =>
        `The multipart body could not be read (${problem}): send the file(s) in the field \`attachments\`, with at most 20 short text fields.`,
    },
    noFiles: {
      status: 400,
      code: "no_files",
      description: "no file in the field `attachments`",
      message: "No file was sent: upload multipart/form-data with the file(s) in the field `attachments`.",
    },
    unexpectedField: {
      status: 400,
      code: "unexpected_field",
      description: "a file in a field other than `attachments`",
      message: (field: string | undefined) =>
        `Files go in the field \`attachments\`${field ? `, not \`${field}\`` : ""}: rename the form field.`,
    },
    fileTooLarge: {
      status: 413,
      code: "file_too_large",
      description: "a file over the kind's size limit",
      message: (what: string, limit: number) =>
        `A file is over the limit of ${limit} bytes (${mib(limit)}) for ${what}: send a smaller file.`,
    },
    tooManyFiles: {
      status: 413,
      code: "too_many_files",
      description: "more files than the kind allows in one request",
      message: (what: string, max: number) =>
        `At most ${max} file${max === 1 ? "" : "s"} per request for ${what}: send the rest in another request.`,
    },
    requestPixelsExceeded: {
      status: 413,
      code: "request_pixels_exceeded",
      description: "the images of one request add up to too many pixels",
      message: (limit: number, total: number) =>
        `The images of this request add up to more than ${limit} pixels (${total} so far): send fewer or smaller images per request.`,
    },
    quotaExceeded: {
      status: 413,
      code: "quota_exceeded",
      description: "the upload would take the caller over `media.quotaBytes`",
      message: (quota: number, used: number, adding: number) =>
        `This upload (${adding} bytes) would take you over your storage quota of ${quota} bytes (${used} used). ` +
        "The quota does not reset by itself: space comes back as older attachments are deleted (or expire); delete some first.",
    },
    unrecognisedType: {
      status: 415,
      code: "unsupported_type",
      description: "a file whose content is of no type the kind accepts",
      message: (what: string, allowed: readonly string[]) =>
        `This file's content is not a type ${what} accept (${allowed.join(", ")}): send one of those.`,
    },
    unsupportedType: {
      status: 415,
      code: "unsupported_type",
      description: "a file of a type the kind does not accept",
      message: (mime: string, what: string, allowed: readonly string[]) =>
        `This file is ${mime}; ${what} accept ${allowed.join(", ")}: convert it to one of those.`,
    },
    typeMismatch: {
      status: 415,
      code: "type_mismatch",
      description: "a file sent with a type its content is not",
      message: (said: string, mime: string) =>
        `The file was sent as ${said} but its content is ${mime}: send it with its real type (or application/octet-stream).`,
    },
    imageTooLarge: {
      status: 422,
      code: "image_too_large",
      description: "an image of more pixels than the limit",
      message: (problem: string) => problem,
    },
    invalidImage: {
      status: 422,
      code: "invalid_image",
      description: "a file that is not a readable image",
      message: (problem: string) => problem,
    },
    noAttachment: {
      status: 404,
      code: "not_found",
      description: "no stored attachment of this kind by that name",
      message: "No such attachment: check the path and the name.",
    },
    noThumbnail: {
      status: 404,
      code: "not_found",
      description: "the attachment has no thumbnail of that size",
      message: (size: number) => `No such ${size} px thumbnail: check the path and the name.`,
    },
    noAvatar: {
      status: 404,
      code: "not_found",
      description: "a name that is neither a stored name nor a user's node",
      message: "No such avatar: check the path and the name.",
    },
    noGeneratedAvatar: {
      status: 404,
      code: "not_found",
      description: "an empty name, or one longer than 320 characters",
      message: "No such generated avatar: check the path and the name.",
    },
    rangeNotSatisfiable: {
      status: 416,
      code: "range_not_satisfiable",
      description: "a Range outside the file",
      message: (size: number) =>
        `The range is outside the file's ${size} bytes: ask for bytes 0-${Math.max(0, size - 1)}.`,
      headers: (size: number) => ({ "content-range": `bytes */${size}`, "accept-ranges": "bytes" }),
    },
    imagesBusy: {
      status: 503,
      code: "images_busy",
      description: "the server is processing as many images as it can; retry after `Retry-After`",
      message: (retryAfterS: number) =>
        `The server is processing as many images as it can right now; retry in ${retryAfterS} s.`,
      headers: (retryAfterS: number) => retryAfter(retryAfterS),
    },
    insufficientStorage: {
      status: 507,
      code: "insufficient_storage",
      description: "the storage is short of space; retry later",
      message:
        "The server is short of storage space and cannot take this upload now; retry later, or send a smaller file.",
      headers: retryAfter(600),
    },

    // ---- XEP-0363 uploads of XMPP servers' upload modules (xmpp-upload/) ----------------------------------
    xmppNoDomain: {
      status: 404,
      code: "not_found",
      description: "no XEP-0363 upload of this kind is configured for the domain in the URL",
      message: (domain: string, kind: string) =>
        `No ${kind} XEP-0363 uploads are configured for "${domain}" (media.xmppUpload.domains): check the XMPP server's upload URL.`,
    },
    xmppBadSignature: {
      status: 403,
      code: "invalid_signature",
      description: "the upload URL's signature is missing, malformed or does not match the request",
      message: (reason: string) =>
        `This upload URL is not valid: ${reason}. Ask the XMPP server for a new slot; its secret must be the one in media.xmppUpload.`,
    },
    xmppExpired: {
      status: 403,
      code: "url_expired",
      description: "the upload URL's signature expired (or was made in the future)",
      message: (reason: string) =>
        `This upload URL has expired: ${reason}. Ask the XMPP server for a new slot.`,
    },
    xmppSlotUsed: {
      status: 409,
      code: "slot_used",
      description: "a file was already uploaded to this slot: a slot takes one upload",
      message: "A file was already uploaded to this slot; ask the XMPP server for a new slot.",
    },
    xmppLengthRequired: {
      status: 411,
      code: "length_required",
      description: "a PUT without Content-Length (the signature covers it)",
      message: "Send the upload with a Content-Length header: the slot's signature covers the file's size.",
    },
    xmppTooLarge: {
      status: 413,
      code: "file_too_large",
      description: "a file over the domain's `media.xmppUpload.domains.<d>.maxBytes`",
      message: (domain: string, limit: number) =>
        `A file is over the limit of ${limit} bytes (${mib(limit)}) for XMPP uploads of ${domain}: send a smaller file.`,
    },
    xmppSizeMismatch: {
      status: 413,
      code: "size_mismatch",
      description: "the body's size is not the size the slot was signed for",
      message: (signed: number, sent: number) =>
        `This slot is for a file of ${signed} bytes, not ${sent}: ask the XMPP server for a slot of the file's size.`,
    },
    xmppDomainQuota: {
      status: 413,
      code: "quota_exceeded",
      description:
        "the upload would take the domain's XEP-0363 uploads over `media.xmppUpload.domains.<d>.quotaBytes`",
      message: (domain: string, quota: number, used: number, adding: number) =>
        `This upload (${adding} bytes) would take the XMPP uploads of ${domain} over their quota of ${quota} bytes (${used} used); space comes back as older files expire (sidecars media gc).`,
    },
    xmppIncomplete: {
      status: 400,
      code: "incomplete_upload",
      description:
        "the body ended before its Content-Length; nothing was stored and the slot may be used again",
      message: (length: number, got: number) =>
        `The body ended after ${got} of ${length} bytes: nothing was stored; send the file again to the same URL.`,
    },
    xmppNoUpload: {
      status: 404,
      code: "not_found",
      description: "nothing was uploaded to this slot (yet), or it expired",
      message: "No file was uploaded to this URL, or it has expired.",
    },
  }),
};
