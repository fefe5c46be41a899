namespace Procurement.Domain.Errors;

/// <summary>The <c>ErrorInfo.reason</c> values of the API. Stable: clients branch on them.</summary>
public static class ErrorReasons
{
    public const string Domain = "procurement";

    public const string InvalidField = "INVALID_FIELD";
    public const string InvalidJson = "INVALID_JSON";
    public const string RequestIdReused = "REQUEST_ID_REUSED";
    public const string InvalidPageToken = "INVALID_PAGE_TOKEN";
    public const string NotFound = "NOT_FOUND";
    public const string AlreadyExists = "ALREADY_EXISTS";
    public const string EtagMismatch = "ETAG_MISMATCH";
    public const string InvalidState = "INVALID_STATE";
    public const string ReservationsExceedCapacity = "RESERVATIONS_EXCEED_CAPACITY";
    public const string AmendmentNotAllowed = "AMENDMENT_NOT_ALLOWED";
    public const string TermEnded = "TERM_ENDED";
    public const string ApiKeyMissing = "API_KEY_MISSING";
    public const string ApiKeyInvalid = "API_KEY_INVALID";
    public const string RoleNotAllowed = "ROLE_NOT_ALLOWED";
    public const string StorageBusy = "STORAGE_BUSY";
    public const string StorageUnavailable = "STORAGE_UNAVAILABLE";
    public const string ShuttingDown = "SHUTTING_DOWN";
    public const string ValueOutOfRange = "VALUE_OUT_OF_RANGE";
    public const string RateLimited = "RATE_LIMITED";
}
