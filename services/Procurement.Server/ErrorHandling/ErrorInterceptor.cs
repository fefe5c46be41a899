using Google.Protobuf.WellKnownTypes;
using Google.Rpc;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.Data.Sqlite;
using Procurement.Domain.Errors;
using Procurement.Storage;

namespace Procurement.Server.ErrorHandling;

/// <summary>
/// The one place domain failures become gRPC statuses with the rich error model: <c>ErrorInfo</c>
/// (reason, domain <c>procurement</c>, metadata), plus <c>BadRequest</c> for bad fields and
/// <c>PreconditionFailure</c> for failed preconditions. Anything unexpected is logged and answered
/// INTERNAL without internals.
/// </summary>
public sealed partial class ErrorInterceptor(ILogger<ErrorInterceptor> logger) : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            return await continuation(request, context);
        }
        catch (Exception ex) when (ex is not RpcException)
        {
            throw Translate(ex, context);
        }
    }

    public override async Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            return await continuation(requestStream, context);
        }
        catch (Exception ex) when (ex is not RpcException)
        {
            throw Translate(ex, context);
        }
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(
        TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            await continuation(request, responseStream, context);
        }
        catch (Exception ex) when (ex is not RpcException)
        {
            throw Translate(ex, context);
        }
    }

    public override async Task DuplexStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            await continuation(requestStream, responseStream, context);
        }
        catch (Exception ex) when (ex is not RpcException)
        {
            throw Translate(ex, context);
        }
    }

    private RpcException Translate(Exception ex, ServerCallContext context)
    {
        switch (ex)
        {
            case ProcurementException pe:
                return ToRpcException(pe);
            case OperationCanceledException when context.CancellationToken.IsCancellationRequested:
                return new RpcException(new Grpc.Core.Status(StatusCode.Cancelled, "The call was cancelled."));
            case SqliteException { SqliteErrorCode: 5 or 6 }: // SQLITE_BUSY, SQLITE_LOCKED
            case CommitFailedException { InnerException: SqliteException { SqliteErrorCode: 5 or 6 } }: // e.g. the keys command held the write lock
                Log.StorageBusy(logger, ex, context.Method);
                return ToRpcException(new ProcurementException(ErrorKind.ResourceExhausted, ErrorReasons.StorageBusy,
                    "The database is busy; retry with the same request_id."), StatusCode.Unavailable);
            case CommitFailedException:
                // Logged by the store with the group it failed. Nothing is acknowledged, so a retry is safe.
                return ToRpcException(new ProcurementException(ErrorKind.ResourceExhausted, ErrorReasons.StorageUnavailable,
                    "The database did not confirm this request's commit, so it is not acknowledged; retry with the same request_id (it is then applied exactly once)."), StatusCode.Unavailable);
            case StorageUnavailableException:
                Log.StorageUnavailable(logger, ex, context.Method);
                return ToRpcException(new ProcurementException(ErrorKind.ResourceExhausted, ErrorReasons.StorageUnavailable,
                    "The database is unavailable and nothing was written; retry with the same request_id."), StatusCode.Unavailable);
            case OverflowException:
                // Inputs each within range whose product is not (an amount past int64 micros).
                return ToRpcException(new ProcurementException(ErrorKind.InvalidArgument, ErrorReasons.ValueOutOfRange,
                    "A computed amount cannot be represented (past int64 micros or decimal's 28 digits)."));
            case ObjectDisposedException:
                return ToRpcException(new ProcurementException(ErrorKind.ResourceExhausted, ErrorReasons.ShuttingDown,
                    "The server is shutting down; retry with the same request_id."), StatusCode.Unavailable);
            default:
                Log.Unhandled(logger, ex, context.Method);
                return new RpcException(new Grpc.Core.Status(StatusCode.Internal, "Internal error; it has been logged."));
        }
    }

    public static RpcException ToRpcException(ProcurementException pe, StatusCode? overrideCode = null)
    {
        var code = overrideCode ?? pe.Kind switch
        {
            ErrorKind.InvalidArgument => StatusCode.InvalidArgument,
            ErrorKind.NotFound => StatusCode.NotFound,
            ErrorKind.AlreadyExists => StatusCode.AlreadyExists,
            ErrorKind.FailedPrecondition => StatusCode.FailedPrecondition,
            ErrorKind.Aborted => StatusCode.Aborted,
            ErrorKind.ResourceExhausted => StatusCode.ResourceExhausted,
            ErrorKind.PermissionDenied => StatusCode.PermissionDenied,
            ErrorKind.Unauthenticated => StatusCode.Unauthenticated,
            _ => StatusCode.Unknown,
        };

        var errorInfo = new ErrorInfo { Reason = pe.Reason, Domain = ErrorReasons.Domain };
        foreach (var (k, v) in pe.Metadata)
        {
            errorInfo.Metadata[ErrorText.Bound(k, ErrorText.MaxPartBytes)] = ErrorText.Bound(v, ErrorText.MaxPartBytes);
        }

        var status = new Google.Rpc.Status { Code = (int)code, Message = ErrorText.Bound(pe.Message, ErrorText.MaxMessageBytes), Details = { Any.Pack(errorInfo) } };
        // Details are bounded, so an error always fits in the few KB of trailers clients accept: a
        // request with a thousand bad fields learns of the first ones and how many more there are.
        var budget = ErrorText.MaxDetailsBytes - errorInfo.CalculateSize();
        if (pe.FieldViolations.Count > 0)
        {
            var badRequest = new BadRequest();
            foreach (var v in pe.FieldViolations)
            {
                var violation = new BadRequest.Types.FieldViolation { Field = ErrorText.Bound(v.Field, ErrorText.MaxPartBytes), Description = ErrorText.Bound(v.Description, ErrorText.MaxPartBytes) };
                if (badRequest.FieldViolations.Count == ErrorText.MaxViolations || (budget -= violation.CalculateSize() + 4) < 0)
                {
                    break;
                }

                badRequest.FieldViolations.Add(violation);
            }

            status.Details.Add(Any.Pack(badRequest));
            if (badRequest.FieldViolations.Count < pe.FieldViolations.Count)
            {
                errorInfo.Metadata["field_violations_omitted"] = (pe.FieldViolations.Count - badRequest.FieldViolations.Count).ToString(System.Globalization.CultureInfo.InvariantCulture);
                status.Details[0] = Any.Pack(errorInfo);
            }
        }

        if (pe.RetryAfter is { } retryAfter)
        {
            status.Details.Add(Any.Pack(new RetryInfo { RetryDelay = Duration.FromTimeSpan(retryAfter) }));
        }

        if (pe.PreconditionViolations.Count > 0)
        {
            var failure = new PreconditionFailure();
            foreach (var v in pe.PreconditionViolations)
            {
                var violation = new PreconditionFailure.Types.Violation
                {
                    Type = ErrorText.Bound(v.Type, ErrorText.MaxPartBytes), Subject = ErrorText.Bound(v.Subject, ErrorText.MaxPartBytes),
                    Description = ErrorText.Bound(v.Description, ErrorText.MaxPartBytes),
                };
                if (failure.Violations.Count == ErrorText.MaxViolations || (budget -= violation.CalculateSize() + 4) < 0)
                {
                    break;
                }

                failure.Violations.Add(violation);
            }

            status.Details.Add(Any.Pack(failure));
        }

        return status.ToRpcException();
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 2001, Level = LogLevel.Error, Message = "Unhandled error in {Method}")]
        public static partial void Unhandled(ILogger logger, Exception exception, string method);

        [LoggerMessage(EventId = 2002, Level = LogLevel.Warning, Message = "Storage busy in {Method}")]
        public static partial void StorageBusy(ILogger logger, Exception exception, string method);

        [LoggerMessage(EventId = 2003, Level = LogLevel.Warning, Message = "Database unavailable in {Method}")]
        public static partial void StorageUnavailable(ILogger logger, Exception exception, string method);
    }
}
