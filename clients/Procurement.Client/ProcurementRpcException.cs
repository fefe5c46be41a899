using Google.Rpc;
using Grpc.Core;

namespace Procurement.Client;

/// <summary>A bad field of a request, as the server named it.</summary>
public sealed record FieldError(string Field, string Description);

/// <summary>
/// A call that failed: the gRPC status code, the <c>ErrorInfo</c> reason (e.g. <c>BURST_LIMIT_EXCEEDED</c>),
/// its metadata and every bad field. Thrown by every client method instead of <see cref="RpcException"/>.
/// </summary>
public sealed class ProcurementRpcException : Exception
{
    public const string CircuitOpen = "CIRCUIT_OPEN";
    public const string TimedOut = "TIMED_OUT";

    public ProcurementRpcException(StatusCode statusCode, string? reason, string message, IReadOnlyList<FieldError> fieldErrors,
        IReadOnlyDictionary<string, string> metadata, Exception? inner)
        : base(message, inner)
    {
        StatusCode = statusCode;
        Reason = reason;
        FieldErrors = fieldErrors;
        Metadata = metadata;
    }

    public StatusCode StatusCode { get; }

    /// <summary>The server's UPPER_SNAKE reason, or <see cref="CircuitOpen"/>/<see cref="TimedOut"/> from the client itself.</summary>
    public string? Reason { get; }

    public IReadOnlyList<FieldError> FieldErrors { get; }

    public IReadOnlyDictionary<string, string> Metadata { get; }

    public static ProcurementRpcException From(RpcException e)
    {
        var status = e.GetRpcStatus();
        var info = status?.GetDetail<ErrorInfo>();
        var bad = status?.GetDetail<BadRequest>();
        return new ProcurementRpcException(
            e.StatusCode,
            info?.Reason,
            string.IsNullOrEmpty(e.Status.Detail) ? e.StatusCode.ToString() : e.Status.Detail,
            bad?.FieldViolations.Select(v => new FieldError(v.Field, v.Description)).ToList() ?? [],
            info?.Metadata.ToDictionary(kv => kv.Key, kv => kv.Value) ?? [],
            e);
    }
}
