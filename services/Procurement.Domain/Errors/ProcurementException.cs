namespace Procurement.Domain.Errors;

/// <summary>The kinds of failure the domain reports; the server maps each to one gRPC status.</summary>
public enum ErrorKind
{
    InvalidArgument,
    NotFound,
    AlreadyExists,
    FailedPrecondition,
    Aborted,
    ResourceExhausted,
    PermissionDenied,
    Unauthenticated,
}

/// <summary>One bad field of a request, named by its path in the request (e.g. <c>terms.rate_card[0].mode</c>).</summary>
public sealed record FieldViolation(string Field, string Description);

/// <summary>One failed precondition, e.g. a pool whose reservations would exceed its capacity.</summary>
public sealed record PreconditionViolation(string Type, string Subject, string Description);

/// <summary>
/// A failure the caller can act on. Domain and service code throw it; one server interceptor turns it
/// into a gRPC status with <c>google.rpc.ErrorInfo</c> (the <see cref="Reason"/>) and, where present,
/// <c>BadRequest</c> and <c>PreconditionFailure</c> details.
/// </summary>
public sealed class ProcurementException : Exception
{
    public ProcurementException(
        ErrorKind kind,
        string reason,
        string message,
        IReadOnlyList<FieldViolation>? fieldViolations = null,
        IReadOnlyList<PreconditionViolation>? preconditionViolations = null,
        IReadOnlyDictionary<string, string>? metadata = null,
        TimeSpan? retryAfter = null)
        : base(message)
    {
        RetryAfter = retryAfter;
        Kind = kind;
        Reason = reason;
        FieldViolations = fieldViolations ?? [];
        PreconditionViolations = preconditionViolations ?? [];
        Metadata = metadata ?? new Dictionary<string, string>();
    }

    public ErrorKind Kind { get; }

    /// <summary>UPPER_SNAKE_CASE, stable, from <see cref="ErrorReasons"/>.</summary>
    public string Reason { get; }

    public IReadOnlyList<FieldViolation> FieldViolations { get; }

    public IReadOnlyList<PreconditionViolation> PreconditionViolations { get; }

    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>How long the caller should wait before trying again, when the server can say (<c>google.rpc.RetryInfo</c>).</summary>
    public TimeSpan? RetryAfter { get; }
}
