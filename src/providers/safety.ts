/**
 * Whether an upstream's error text is a safety (content policy) rejection. Upstreams say it in
 * prose: "your request contains unsafe prompt or images, such as porn, violence, minors etc., has
 * been rejected by google", "Your prompt conflicted with our safety policies", "moderation_blocked",
 * "public error: prompt flagged"… A reCAPTCHA or quota failure is not a safety rejection.
 */
export function isSafetyText(text: string): boolean {
  return /unsafe|safety|moderation|content polic|violat|prohibited|flagged|nsfw|rai[_ ]?media|sensitive content/i.test(text) && !/recaptcha/i.test(text);
}
