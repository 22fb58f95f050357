package jiandaoyun

import "checkin-sync/internal/apierr"

// API codes the client treats specially.
const (
	codeRateEnterprise    = 8303
	codeRateInterface     = 8304
	codeMissing           = 4001
	codeTransactionExists = 17026
)

const keyPlace = "check JDY_API_KEY (开放平台 → 密钥管理)"
const planHint = "plan limit reached: contact the Jiandaoyun admin or upgrade the plan"

func isRateLimitCode(code int) bool {
	return code == codeRateEnterprise || code == codeRateInterface
}

// isRejectedCode: the codes with which the API refuses the records of a
// request (product.md "Crash safety": rejected). Nothing was written.
func isRejectedCode(code int) bool {
	switch code {
	case 4000, 3005, 17032, 1010:
		return true
	}
	return false
}

const batchUnknownHint = "the batch may or may not have been written: " + unknownHint

// classifyBatchCreateCode classes a code answered to batch_create. Every
// answer falls in exactly one class (product.md "Crash safety"):
//   - not processed (8303, 8304): Retry; the client resends the identical
//     request, same transaction_id, after a backoff;
//   - rejected (4000, 3005, 17032, 1010): Record;
//   - credentials, scope, app, form or plan: Fatal, and a request built
//     wrong: Programming (in both, nothing was written);
//   - anything else, including 9004, 9007, 4012, 17026, 4001 and any code
//     the client does not know: Unknown, never resent by the client.
func classifyBatchCreateCode(code int) (apierr.Class, string) {
	class, hint := classifyCode(code)
	switch {
	case isRateLimitCode(code):
		return apierr.Retry, hint
	case class == apierr.Fatal || class == apierr.Programming:
		return class, hint
	case isRejectedCode(code):
		return apierr.Record, hint
	case code == codeTransactionExists:
		return apierr.Unknown, "the transaction_id was used before: " + batchUnknownHint
	case class == apierr.Record:
		// Not a code this client knows.
		return apierr.Unknown, "Jiandaoyun answered with a code this client does not know: " + batchUnknownHint
	}
	return apierr.Unknown, hint + "; " + batchUnknownHint
}

// classifyCode maps a Jiandaoyun error code to its class and a hint that
// names the fix, for every endpoint but batch_create (see
// classifyBatchCreateCode). Codes not listed are permanent for the records
// sent.
func classifyCode(code int) (apierr.Class, string) {
	switch code {
	// Transient: wait and resend.
	case codeRateEnterprise:
		return apierr.Retry, "the enterprise-wide API rate limit was hit (shared with other integrations); lower jiandaoyun.rate_per_second.global if this persists"
	case codeRateInterface:
		return apierr.Retry, "this interface's rate limit was hit; lower jiandaoyun.rate_per_second if this persists"
	case 9004:
		return apierr.Retry, "Jiandaoyun could not create a queue task; try again later"
	case 9007:
		return apierr.Retry, "Jiandaoyun could not take a lock; try again later"
	case 4012:
		return apierr.Retry, "the form is busy with another batch edit; try again later"

	// Fatal for the run: credentials, scope, app, form, plan.
	case 8301:
		return apierr.Fatal, "the API key is wrong: " + keyPlace
	case 17018:
		return apierr.Fatal, "the API key is invalid or disabled: " + keyPlace
	case 8302:
		return apierr.Fatal, "this API key has no permission for this API: check its permissions (开放平台 → 密钥管理)"
	case 17052:
		return apierr.Fatal, "this machine's IP address is not on the API key's IP whitelist: add it (开放平台 → 密钥管理)"
	case 17053:
		return apierr.Fatal, "this API key may not access this app: edit the key's app scope (开放平台 → 密钥管理)"
	case 17054:
		return apierr.Fatal, "this API key may not call this interface: edit the key's interface scope (开放平台 → 密钥管理)"
	case 2004:
		return apierr.Fatal, "the app does not exist: check jiandaoyun.app_id"
	case 3000:
		return apierr.Fatal, "the form does not exist: check jiandaoyun.entry_id"
	case 8017:
		return apierr.Fatal, "the enterprise does not exist or was dissolved: check which enterprise the API key belongs to"
	case 7212:
		return apierr.Fatal, "the monthly data quota is used up; " + planHint
	case 7221:
		return apierr.Fatal, "data created through the API is over the plan's limit; " + planHint
	case 7103, 7206:
		return apierr.Fatal, "the system is paused for over-use; " + planHint

	// The request was built wrong.
	case 1:
		return apierr.Programming, "a required parameter is missing: this is a bug in checkin-sync"
	case 4815:
		return apierr.Programming, "the list filter is invalid (perhaps too long): this is a bug in checkin-sync"
	case 17017:
		return apierr.Programming, "a parameter is invalid: this is a bug in checkin-sync"
	case 17024:
		return apierr.Programming, "more than 100 records in one batch: this is a bug in checkin-sync"
	case 17025:
		return apierr.Programming, "the transaction_id has a bad format: this is a bug in checkin-sync"

	case codeMissing:
		return apierr.Missing, "the record no longer exists (deleted by hand?): look its key up again"
	case codeTransactionExists:
		return apierr.Record, "the transaction_id was used before: resolve the batch by looking its keys up"

	// Permanent for the records in the request.
	case 4000:
		return apierr.Record, "Jiandaoyun rejected the data: check the mapping's value types against the form's fields"
	case 3005:
		return apierr.Record, "a parameter is invalid: check the mapped values against the form's fields"
	case 17032:
		return apierr.Record, "a field has a type the API cannot write: remove it from the mapping"
	case 1010:
		return apierr.Record, "a member (成员) field names a username that does not exist in Jiandaoyun: as: member writes the WeCom userid, which is a Jiandaoyun username only when Jiandaoyun's contacts are integrated with WeCom (通讯录 → 企业微信集成) and the person is synced there; integrate the contacts and sync this person, or drop the member field from the mapping"
	}
	return apierr.Record, "Jiandaoyun rejected the request: see its error table for this code"
}
